#!/usr/bin/env bash
# Runs the whole test suite: go vet and go test -race over every module of
# the repository (the go.work modules when there is a go.work).
#
#   scripts/test.sh [go test flags...]     e.g. scripts/test.sh -run Insert -v
#
# The database tests start private MariaDB servers of their own
# (internal/testserver), so no server needs to be running, only installed:
# when neither mariadbd nor mysqld (with mariadb-install-db) is found, this
# installs Debian's mariadb-server (using sudo when not root). Go and, for
# -race, a C compiler (gcc) must be installed; gcc is installed too if missing.
set -euo pipefail

section() { printf '\n===== %s =====\n' "$*"; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# find_prog NAME... prints the first NAME found on PATH or in the sbin/bin
# dirs (Debian's mariadbd is in /usr/sbin, not always on PATH).
find_prog() {
	local name dir
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		for dir in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
			if [[ -x "$dir/$name" ]]; then
				echo "$dir/$name"
				return 0
			fi
		done
	done
	return 1
}

apt_install() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update
	"${sudo[@]}" apt-get install -y --no-install-recommends "$@"
}

section "Prerequisites"
if ! command -v go >/dev/null 2>&1; then
	if [[ -x /usr/local/go/bin/go ]]; then
		export PATH="$PATH:/usr/local/go/bin"
	else
		echo "go not found: install Go (see go.mod for the version) and put it on PATH" >&2
		exit 1
	fi
fi
missing=()
if ! find_prog mariadbd mysqld >/dev/null || ! find_prog mariadb-install-db mysql_install_db >/dev/null; then
	echo "no MariaDB server found: installing mariadb-server"
	missing+=(mariadb-server)
fi
if ! command -v gcc >/dev/null 2>&1; then
	echo "no gcc found (go test -race needs cgo): installing gcc"
	missing+=(gcc libc6-dev)
fi
# The Galera cluster tests (internal/testserver) need the Galera 4 provider
# and rsync (for the rsync state transfer); see galeraProviders there.
galera_found=
for lib in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so /usr/lib64/galera/libgalera_smm.so; do
	if [[ -f $lib ]]; then
		galera_found=$lib
		break
	fi
done
if [[ -z $galera_found ]]; then
	echo "no Galera provider found: installing galera-4"
	missing+=(galera-4)
fi
if ! command -v rsync >/dev/null 2>&1; then
	echo "no rsync found (Galera state transfer): installing rsync"
	missing+=(rsync)
fi
if ! command -v ss >/dev/null 2>&1 && ! command -v lsof >/dev/null 2>&1; then
	echo "neither ss nor lsof found (wsrep_sst_rsync needs one): installing iproute2"
	missing+=(iproute2)
fi
# cmd/batchload's TestUnicodeData loads Unicode's own table (a Debian
# package) as real CSV and TSV input.
if [[ ! -f /usr/share/unicode/UnicodeData.txt ]]; then
	echo "no /usr/share/unicode/UnicodeData.txt: installing unicode-data"
	missing+=(unicode-data)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	apt_install "${missing[@]}"
fi
server=$(find_prog mariadbd mysqld) || { echo "still no mariadbd/mysqld after installing mariadb-server" >&2; exit 1; }
installdb=$(find_prog mariadb-install-db mysql_install_db) || { echo "still no mariadb-install-db after installing mariadb-server" >&2; exit 1; }

section "Versions"
go version
echo "server:     $("$server" --version)"
echo "install-db: $installdb"
echo "gcc:        $(gcc --version | head -n1)"
echo "CI=${CI:-}  GOFLAGS=${GOFLAGS:-}  BATCH_TEST_DSN=${BATCH_TEST_DSN:+(set)}"

# Every module of the build: with a go.work, all its modules (./... alone
# would not descend into them); else the main module.
mapfile -t moddirs < <(go list -m -f '{{.Dir}}')
pkgs=()
for d in "${moddirs[@]}"; do
	rel=$(realpath --relative-to="$root" "$d")
	if [[ $rel == "." ]]; then
		pkgs+=("./...")
	else
		pkgs+=("./$rel/...")
	fi
done
echo "packages:   ${pkgs[*]}"

section "gofmt"
unformatted=$(gofmt -l . | grep -v '^testdata/' || true)
if [[ -n $unformatted ]]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi

section "go vet"
go vet "${pkgs[@]}"

section "go test -race"
go test -count=1 -race -timeout 45m "${pkgs[@]}" "$@"

section "All tests passed"

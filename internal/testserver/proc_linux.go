//go:build linux

package testserver

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// sysProcAttr makes mariadbd die with the test process (Pdeathsig; see the
// package documentation for why the forking thread is kept alive) and puts it
// in a process group of its own, away from a terminal's Ctrl-C.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// runAs makes attr start the process as the named user and its primary
// group. The kernel clears Pdeathsig when a process changes its user ID, so
// a server that must not run as root is started as its user (the
// credentials are set before Pdeathsig in the child) instead of being
// given --user.
func runAs(attr *syscall.SysProcAttr, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("testserver: run mariadbd as %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("testserver: user %s has uid %q, gid %q", name, u.Uid, u.Gid)
	}
	attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

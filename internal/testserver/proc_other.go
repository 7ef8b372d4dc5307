//go:build !linux

package testserver

import (
	"errors"
	"syscall"
)

// sysProcAttr: Pdeathsig exists only on Linux; elsewhere only Close and
// Shutdown stop the servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processAlive cannot tell elsewhere, so stale temp dirs are never swept.
func processAlive(pid int) bool { return true }

// runAs is only implemented on Linux.
func runAs(attr *syscall.SysProcAttr, name string) error {
	return errors.New("testserver: running mariadbd as another user is only supported on Linux")
}

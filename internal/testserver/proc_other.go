//go:build !linux

package testserver

import "syscall"

// sysProcAttr: Pdeathsig exists only on Linux; elsewhere only Close and
// Shutdown stop the servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// processAlive cannot tell elsewhere, so stale temp dirs are never swept.
func processAlive(pid int) bool { return true }

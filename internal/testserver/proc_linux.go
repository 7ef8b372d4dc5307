//go:build linux

package testserver

import "syscall"

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

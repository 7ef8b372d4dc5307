//go:build linux

package main

import "syscall"

// sysProcAttr makes the private server die with the test process and puts
// it in a process group of its own, away from a terminal's Ctrl-C.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

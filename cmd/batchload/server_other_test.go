//go:build !linux

package main

import "syscall"

// sysProcAttr: without Pdeathsig, the private server is only killed by
// TestMain's stopServer.
func sysProcAttr() *syscall.SysProcAttr { return nil }

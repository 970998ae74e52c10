//go:build unix && !linux

package nodetest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}

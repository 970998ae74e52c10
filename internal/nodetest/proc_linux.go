package nodetest

import "syscall"

// setDeathSignal makes the kernel kill the node process if the test binary
// dies (for example on a go test -timeout panic).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

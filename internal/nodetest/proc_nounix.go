//go:build !unix

package nodetest

import (
	"os"
	"os/exec"
)

func setProcAttr(*exec.Cmd) {}

func termGroup(p *os.Process) error { return p.Kill() }

func killGroup(p *os.Process) error { return p.Kill() }

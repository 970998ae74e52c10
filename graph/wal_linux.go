//go:build linux

package graph

import (
	"os"
	"syscall"
)

// fdatasync flushes the data of f (and the metadata needed to read it,
// such as its size) to stable storage.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

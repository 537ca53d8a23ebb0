package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slipway-dev/slipway/internal/auth"
)

// stdin is what hash-password reads; tests replace it.
var stdin io.Reader = os.Stdin

// hashPassword prints the argon2id hash of the first line of standard input.
func hashPassword(_ context.Context, _, _ []string, stdout, _ io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return errors.New("give a password of at least 8 characters on standard input")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

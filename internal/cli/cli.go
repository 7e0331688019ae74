// Package cli is the command-line convention every framering command
// follows, kept in one place so that the five binaries cannot drift apart:
//
//   - exit codes: 0 a clean stop, 1 a runtime failure, 2 a usage error (a
//     bad flag value, an invalid ring name, an impossible range), 3 a check
//     that ran and found a problem (a damaged archive, a pipeline whose books
//     do not balance);
//   - help: -h, -help and --help print the usage on stdout and exit 0; every
//     flag is listed with a one-line description and its default, and a
//     boolean flag that defaults to true says how to turn it off;
//   - a usage error prints one line naming the problem and where the help is,
//     on stderr;
//   - a multi-command binary answers -h, help and no arguments with its
//     subcommands, one line each;
//   - logs: -log-format text|json, -log-level; JSON logs name values the way
//     text logs do (a mode is "lossy", a duration "1.5s").
//
// It lives in the module's top-level internal/ (not under one cmd/NAME/) on
// purpose: it is shared by every command and is the convention itself, not
// any command's logic; internal/archcheck lists it for that reason.
package cli

import (
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/framering/framering/ringbuf"
)

// Exit codes, the same in every command.
const (
	ExitOK      = 0 // a clean stop
	ExitFailure = 1 // a runtime failure
	ExitUsage   = 2 // a usage error: a bad flag value, an invalid ring name, an impossible range
	ExitCheck   = 3 // a check ran and found a problem
)

var (
	// ErrUsage is returned (wrapped) for a usage error: ExitCode maps it to
	// ExitUsage.
	ErrUsage = errors.New("usage error")
	// ErrCheck is returned (wrapped) when a check ran and found a problem:
	// ExitCode maps it to ExitCheck.
	ErrCheck = errors.New("check failed")
)

// ExitCode is the exit code for err: ExitOK for nil or flag.ErrHelp,
// ExitUsage for ErrUsage, ExitCheck for ErrCheck, else ExitFailure.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, ErrCheck):
		return ExitCheck
	}
	return ExitFailure
}

// Usagef returns an error that is ErrUsage and reads as the message alone.
func Usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageError is a usage error whose message is the problem alone.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == ErrUsage }

// Help is a command's (or subcommand's) help text around its flags.
type Help struct {
	// Usage is the synopsis without "usage: ", e.g. "archiver verify -dir DIR [flags]".
	Usage string
	// About is one paragraph or more on what the command does (optional).
	About string
	// More is printed after the flags (optional): examples, exit status.
	More string
}

// NewFlagSet returns a flag set that prints nothing by itself: Parse prints
// the help or the error.
func NewFlagSet(name string, h Help) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &FlagSet{FlagSet: fs, help: h}
}

// FlagSet is a flag.FlagSet with its help text.
type FlagSet struct {
	*flag.FlagSet
	help Help
}

// Parse parses args. On -h it prints the help to stdout and returns
// flag.ErrHelp; a bad flag or a stray argument is a usage error that says
// where the help is.
func (fs *FlagSet) Parse(args []string, stdout io.Writer) error {
	err := fs.FlagSet.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.PrintHelp(stdout)
		return flag.ErrHelp
	}
	return usageError{fmt.Errorf("%w (run '%s -h' for the flags)", err, fs.Name())}
}

// Exit prints err as "prog: err" on stderr (nothing for nil or
// flag.ErrHelp) and returns its exit code.
func Exit(stderr io.Writer, prog string, err error) int {
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	}
	return ExitCode(err)
}

// PrintHelp prints the usage line, the about text, every flag and the
// trailing text.
func (fs *FlagSet) PrintHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n", fs.help.Usage)
	if fs.help.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(fs.help.About, "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		PrintFlags(w, fs.FlagSet)
	}
	if fs.help.More != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(fs.help.More, "\n"))
	}
}

// PrintFlags prints every flag of fs: its name and placeholder, then its
// description with its default, always — "(default 0s)", "(default: none)"
// for an empty string — and, for a boolean flag that defaults to true, how
// to turn it off.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s %s\n", line, usage, Default(f))
	})
}

// Default is how PrintFlags states f's default.
func Default(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		if f.DefValue == "true" {
			return fmt.Sprintf("(default true; -%s=false turns it off)", f.Name)
		}
		return "(default " + f.DefValue + ")"
	}
	switch {
	case f.DefValue == "" || f.DefValue == "[]":
		return "(default: none)"
	case isString(f):
		return fmt.Sprintf("(default %q)", f.DefValue)
	}
	return "(default " + f.DefValue + ")"
}

func isString(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	_, s := g.Get().(string)
	return s
}

// Command is one subcommand of a multi-command binary.
type Command struct {
	Name    string
	Summary string // one line
}

// Multi is a multi-command binary: its name, what it does, its subcommands.
type Multi struct {
	Prog     string
	About    string
	Commands []Command
}

// Start answers what a multi-command binary answers before any subcommand
// runs: no arguments print the commands on stderr (a usage error), -h,
// -help, --help and help print them on stdout, and "help COMMAND" becomes
// "COMMAND -h". When done, the caller exits with code; otherwise args is
// what to dispatch on.
func (m Multi) Start(args []string, stdout, stderr io.Writer) (rest []string, code int, done bool) {
	switch {
	case len(args) == 0:
		m.PrintCommands(stderr)
		return nil, ExitUsage, true
	case args[0] == "help" && len(args) == 2:
		return []string{args[1], "-h"}, 0, false
	case IsHelp(args[0]):
		m.PrintCommands(stdout)
		return nil, ExitOK, true
	}
	return args, 0, false
}

// FlagSet returns the flag set of subcommand name, whose help starts with
// "usage: PROG NAME USAGE" and the subcommand's summary.
func (m Multi) FlagSet(name, usage string) *FlagSet {
	h := Help{Usage: m.Prog + " " + name + " " + usage, More: ExitStatus}
	for _, c := range m.Commands {
		if c.Name == name {
			h.About = m.Prog + " " + name + ": " + c.Summary + "."
		}
	}
	return NewFlagSet(m.Prog+" "+name, h)
}

// Unknown reports an unknown subcommand (a usage error).
func (m Multi) Unknown(stderr io.Writer, name string) int {
	fmt.Fprintf(stderr, "%s: unknown command %q (run '%s help' for the commands)\n", m.Prog, name, m.Prog)
	return ExitUsage
}

// PrintCommands prints the binary's help: its synopsis, about text and
// subcommands, one line each.
func (m Multi) PrintCommands(w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]\n", m.Prog)
	if m.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(m.About, "\n"))
	}
	fmt.Fprintln(w, "\ncommands:")
	width := 0
	for _, c := range m.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range m.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags. %s\n", m.Prog, ExitStatus)
}

// ExitStatus is the exit-code convention in one sentence, for help texts.
const ExitStatus = "Exit status: 0 clean stop, 1 failure, 2 usage error, 3 a check found a problem."

// IsHelp reports whether arg asks for help.
func IsHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// CheckRing checks a -ring / -socket pair: with no socket path, name must
// be a valid ring name (an empty one is an error, not "default").
func CheckRing(name, socket string) error {
	if socket != "" {
		return nil
	}
	if name == "" {
		return Usagef("-ring \"\": want a ring name (1-64 of [A-Za-z0-9._-]) or -socket PATH")
	}
	if _, err := ringbuf.SocketPath(name); err != nil {
		return Usagef("-ring %q: want 1-64 of [A-Za-z0-9._-], not starting with . or -", name)
	}
	return nil
}

// LogFormats and LogLevels are the values of -log-format and -log-level.
const (
	LogFormats = "text or json"
	LogLevels  = "debug, info, warn or error"
)

// NewLogger returns the logger for -log-format (text or json) and
// -log-level (debug, info, warn, error) writing to w; a bad value is a
// usage error. The JSON handler writes durations as Go duration strings
// ("1.5s") and values with a String method as that string, the way the
// text handler does.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("-log-level %q: want %s", level, LogLevels)
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: textLike})), nil
	}
	return nil, Usagef("-log-format %q: want %s", format, LogFormats)
}

// textLike makes a JSON attribute read as the text handler writes it.
func textLike(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindDuration:
		a.Value = slog.StringValue(a.Value.Duration().String())
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error, json.Marshaler, encoding.TextMarshaler:
		case fmt.Stringer:
			a.Value = slog.StringValue(v.String())
		}
	}
	return a
}

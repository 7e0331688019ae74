package exitwatch

// The eBPF program, as instructions, and what it needs to know about the
// tracepoint it runs on.

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/asm"
)

// rule is how the program decides that a process exited.
type rule int

const (
	// ruleGroupDead: the tracepoint's group_dead is true (the last thread).
	ruleGroupDead rule = iota
	// ruleLeader: the exiting thread is the group leader (pid == tgid).
	ruleLeader
)

func (r rule) String() string {
	if r == ruleGroupDead {
		return "group_dead"
	}
	return "leader"
}

// ctxLoad says where the program finds group_dead in its context: a
// classic tracepoint's record (offset and size from the format file) or a
// raw tracepoint's argument array (args[1], a u64).
type ctxLoad struct {
	off  int16
	size asm.Size
}

// rawGroupDead is group_dead in a raw tracepoint's context: the second
// argument of TP_PROTO(struct task_struct *p, bool group_dead).
var rawGroupDead = ctxLoad{off: 8, size: asm.DWord}

// instructions builds the program for a rule. groupDead is used only by
// ruleGroupDead. watched and events are map file descriptors.
func instructions(r rule, groupDead ctxLoad, watched, events int) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // keep ctx: helper calls clobber r1-r5
		asm.FnGetCurrentPidTgid.Call(),
		asm.Mov.Reg(asm.R7, asm.R0), // tgid<<32 | tid
	}
	if r == ruleGroupDead {
		insns = append(insns,
			asm.LoadMem(asm.R2, asm.R6, groupDead.off, groupDead.size),
			asm.JEq.Imm(asm.R2, 0, "out"),
		)
	} else {
		insns = append(insns,
			asm.Mov.Reg32(asm.R2, asm.R7), // tid (zero-extended)
			asm.Mov.Reg(asm.R3, asm.R7),
			asm.RSh.Imm(asm.R3, 32), // tgid
			asm.JNE.Reg(asm.R2, asm.R3, "out"),
		)
	}
	insns = append(insns,
		// Is this process watched? key = tgid, a u32 on the stack.
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.RSh.Imm(asm.R3, 32),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),
		asm.LoadMapPtr(asm.R1, watched),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		// Report it: the u64 tgid<<32 | tid.
		asm.StoreMem(asm.RFP, -16, asm.R7, asm.DWord),
		asm.LoadMapPtr(asm.R1, events),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, eventSize),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnRingbufOutput.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	)
	return insns
}

// eventSize is the size of one ring buffer record: a u64.
const eventSize = 8

// field is one field of a tracepoint's format file.
type field struct {
	off, size int
}

// parseFormat reads a tracefs format file ("field:bool group_dead;
// offset:32; size:1; signed:0;") into fields by name. It takes plain text
// so that it can be tested and fuzzed without tracefs.
func parseFormat(r io.Reader) (map[string]field, error) {
	fields := map[string]field{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var name string
		f := field{off: -1, size: -1}
		for _, part := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			switch k {
			case "field":
				// "bool group_dead", "char comm[16]": the name is the last word,
				// without an array suffix.
				words := strings.Fields(v)
				if len(words) == 0 {
					continue
				}
				name, _, _ = strings.Cut(words[len(words)-1], "[")
			case "offset", "size":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 1<<16 {
					return nil, fmt.Errorf("parse tracepoint format: bad %s %q", k, v)
				}
				if k == "offset" {
					f.off = n
				} else {
					f.size = n
				}
			}
		}
		if name != "" && f.off >= 0 && f.size >= 0 {
			fields[name] = f
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse tracepoint format: %w", err)
	}
	return fields, nil
}

// groupDeadLoad returns how to load group_dead from a classic tracepoint's
// record, if the format has a field the program can read.
func groupDeadLoad(fields map[string]field) (ctxLoad, bool) {
	f, ok := fields["group_dead"]
	if !ok || f.off > 1<<12 {
		return ctxLoad{}, false
	}
	sizes := map[int]asm.Size{1: asm.Byte, 2: asm.Half, 4: asm.Word, 8: asm.DWord}
	s, ok := sizes[f.size]
	if !ok || f.off%f.size != 0 {
		return ctxLoad{}, false
	}
	return ctxLoad{off: int16(f.off), size: s}, true
}

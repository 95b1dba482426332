// Command note_go checks the project's C2SP checkpoints and cosignatures with the Go
// reference code, and makes a cosignature with it for the project to check in turn. It
// reads one JSON request on stdin and writes one JSON answer on stdout; see
// tests/interop/test_go_note.py, which runs it.
//
//	{"mode": "verify", "note": "...", "origin": "...", "log_vkey": "...", "witness_vkey": "..."}
//	{"mode": "cosign", "note": "...", "origin": "...", "log_vkey": "...", "witness_skey": "..."}
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

type request struct {
	Mode        string `json:"mode"`
	Note        string `json:"note"`
	Origin      string `json:"origin"`
	LogVKey     string `json:"log_vkey"`
	WitnessVKey string `json:"witness_vkey"`
	WitnessSKey string `json:"witness_skey"`
}

type answer struct {
	Size       uint64   `json:"size"`
	Root       string   `json:"root"`
	Verified   []string `json:"verified"`
	Extensions string   `json:"extensions"`
	Note       string   `json:"note,omitempty"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail("request: %v", err)
	}
	logVerifier, err := note.NewVerifier(req.LogVKey)
	if err != nil {
		fail("log vkey: %v", err)
	}
	var others []note.Verifier
	if req.WitnessVKey != "" {
		witness, err := fnote.NewVerifierForCosignatureV1(req.WitnessVKey)
		if err != nil {
			fail("witness vkey: %v", err)
		}
		others = append(others, witness)
	}
	// ParseCheckpoint checks the tlog-checkpoint body, the origin and the log's signature,
	// and note.Open every other known signature (a bad one fails the whole note).
	checkpoint, extensions, opened, err := log.ParseCheckpoint(
		[]byte(req.Note), req.Origin, logVerifier, others...)
	if err != nil {
		fail("checkpoint: %v", err)
	}
	out := answer{
		Size:       checkpoint.Size,
		Root:       base64.StdEncoding.EncodeToString(checkpoint.Hash),
		Extensions: string(extensions),
	}
	for _, sig := range opened.Sigs {
		out.Verified = append(out.Verified, sig.Name)
	}
	if req.Mode == "cosign" {
		signer, err := fnote.NewSignerForCosignatureV1(req.WitnessSKey)
		if err != nil {
			fail("witness skey: %v", err)
		}
		signed, err := note.Sign(opened, signer)
		if err != nil {
			fail("cosign: %v", err)
		}
		out.Note = string(signed)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("answer: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "note_go: "+format+"\n", args...)
	os.Exit(1)
}

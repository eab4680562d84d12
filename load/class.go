package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Class is the outcome class of one request: OK, one of the fixed error
// classes, or an HTTP status (Class(status)) for any other HTTP error. It is
// a small integer so the hot path can count it in an array.
type Class uint16

// Outcome classes. Values below 100 are fixed classes; 100–599 are HTTP
// statuses.
const (
	OK          Class = 0
	Timeout     Class = 1  // the request (or dial) outlived its deadline
	ConnRefused Class = 2  // nothing listening: the node is down
	ConnReset   Class = 3  // the connection broke (RST, EOF mid-response)
	Sealed      Class = 4  // "Vault is sealed"
	Standby     Class = 5  // a standby that will not serve or forward
	NoLeader    Class = 6  // a standby that knows no active node
	TLSError    Class = 7  // certificate or handshake failure
	Other       Class = 8  // anything else (DNS, malformed response, …)
	Canceled    Class = 9  // the run was stopped while the request was in flight
	NoActive    Class = 10 // not sent: no node was active (an election, or quorum lost)
	maxClass          = 600
)

var classNames = func() (t [maxClass]string) {
	fixed := []string{"ok", "timeout", "conn_refused", "conn_reset", "sealed", "standby", "no_leader", "tls", "other", "canceled", "no_active"}
	copy(t[:], fixed)
	for s := 100; s < maxClass; s++ {
		t[s] = "http_" + strconv.Itoa(s)
	}
	return t
}()

// String is the name used in samples.jsonl and summary.json
// (errors_by_class): ok, timeout, conn_refused, conn_reset, sealed, standby,
// no_leader, tls, other, canceled, no_active, http_<status>.
func (c Class) String() string {
	if int(c) < maxClass && classNames[c] != "" {
		return classNames[c]
	}
	return "class_" + strconv.Itoa(int(c))
}

// IsError reports whether c counts as a failed request. Canceled does not:
// it is an artefact of stopping the run, not something the cluster did.
func (c Class) IsError() bool { return c != OK && c != Canceled }

// outcomeUnknown reports whether a write that ended with c may nevertheless
// have been applied. Refusals before the request reached Vault (connection
// refused, TLS), and answers Vault gives before touching storage (sealed,
// standby, no leader, 4xx) are known failures; a timeout, a broken
// connection or a 5xx may come after the raft log entry was committed.
func (c Class) outcomeUnknown() bool {
	switch {
	case c == Timeout || c == ConnReset || c == Other || c == Canceled:
		return true
	case c >= 500 && c < 600:
		return true
	}
	return false
}

// classifyErr maps a transport error (no HTTP response) to a class.
func classifyErr(err error) Class {
	if err == nil {
		return OK
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Timeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Timeout
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNABORTED):
		return ConnReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ConnRefused
	case strings.Contains(err.Error(), "http2: client connection lost"), unsent(err):
		// net/http's HTTP/2 health check closed an unanswering connection
		// (under requests in flight, or waiting for a stream); the errors
		// have no type to match.
		return ConnReset
	}
	var (
		unk  x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		ver  *tls.CertificateVerificationError
		rec  tls.RecordHeaderError
		alt  tls.AlertError
	)
	if errors.As(err, &unk) || errors.As(err, &host) || errors.As(err, &inv) ||
		errors.As(err, &ver) || errors.As(err, &rec) || errors.As(err, &alt) {
		return TLSError
	}
	return Other
}

// classifyHTTP maps a Vault error response to a class, reading Vault's
// error strings because Vault reports sealed, standby and leaderless states
// with generic 5xx statuses.
func classifyHTTP(status int, body []byte) Class {
	switch {
	case bytes.Contains(body, []byte("Vault is sealed")):
		return Sealed
	case bytes.Contains(body, []byte("active cluster node not found")),
		bytes.Contains(body, []byte("no active Vault instance found")):
		return NoLeader
	case bytes.Contains(body, []byte("Vault is in standby mode")),
		bytes.Contains(body, []byte("node is not active")):
		return Standby
	}
	if status >= 100 && status < maxClass {
		return Class(status)
	}
	return Other
}

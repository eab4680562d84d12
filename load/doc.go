// Package load is vaultstorm's KV v2 load generator: open-loop (or
// closed-loop) traffic against Vault, latencies in HdrHistogram, and a
// ledger of every acknowledged write that Verify reads back.
//
// # Measurement
//
// Open loop: request i has an intended send time from the Schedule, fixed
// before the run. The pacer sleeps until that time and hands the request to
// a worker; it never waits for answers, so a stalled server does not slow
// the schedule. Latency is measured from the intended time to the answer,
// so a 2 s stall shows as up to 2 s for every request scheduled during it
// (no coordinated omission). Workers are started on demand up to
// Options.MaxInFlight; when none is free the request waits, and its latency
// still counts from its intended time.
//
// A late send is a request that left more than Options.LateThreshold
// (default 2 ms) after its intended time: the generator itself fell behind.
// 2 ms sits above the ~1.1 ms granularity of Go timers on this machine
// (sleeps shorter than a millisecond end about 1.1 ms later), so an idle
// generator reports none, while a generator starved of CPU does. The same
// granularity is in every latency: the runtime waits for timers in whole
// milliseconds, so a request leaves up to ~1 ms after its intended time.
// Options.Tick rounds intended times up to a grid instead, so that each
// tick's requests leave in one burst (less CPU per request). When the
// achieved rate is below 98 % of the scheduled one, Run says so through
// Options.Logf and Summary.RateReached.
//
// Recording: one histogram per operation (1 µs to 60 s, 3 significant
// digits, values in ns) for the whole run and one per 1 s interval, by
// completion time. Every request is recorded, failed ones included (a
// stall that ends in errors must still show); Canceled requests (cut by the
// end of the run) are not. Each second appends a rundir.Sample to
// samples.jsonl and the interval histograms, tagged read, write, list and
// delete, to histograms.hlog (HdrHistogram interval log v1.3, timestamps
// relative to the run start), each with one write call, so a SIGKILL at
// any instant leaves every finished second readable.
//
// # Ledger and verification
//
// Every acknowledged write is appended to ledger.jsonl as it is answered
// (key, KV version, sha256 of the value, send and answer time); writes
// whose outcome cannot be known (timeout, broken connection, 5xx) are
// ledgered as "unknown", and deletes as "deleted" (or "unknown"). Values
// are unique per write, so a stale version never has a newer digest.
//
// Verify (and checkers.CheckLedger, its pure core) reads every key back. For each
// key, W is the acknowledged write with the highest version. The key is
// fine when the store's latest version is W with W's digest, or later than
// W (an unknown-outcome write was applied). It is legitimately absent when
// the latest version is deleted and one of the run's deletes was answered
// after W was sent (it may have been applied after W). Anything else is a
// lost write: the key is missing (all its acknowledged writes are lost),
// at an older version (the acknowledged writes above it are lost), deleted
// by someone else, or holding another value at W's version (1 lost). When
// the store is past W, W's version is read by ?version=N and must still
// hold W's value; a version KV v2 purged (max_versions) is unverifiable.
// One version acknowledged with two values is a lost write too
// (DuplicateVersions). A read-back that fails or stops returns what it
// read, unverified.
//
// # History
//
// For a sample of Options.HistoryKeys keys (default 16, spread over the
// key space), every operation, prefill included, is appended to
// history.jsonl: reads with the version and value they saw, writes with
// their value and acknowledged version, deletes; unknown outcomes with no
// return time. checkers.CheckDir judges it linearizable or not.
//
// # Hot path
//
// Requests go out as raw HTTP requests over one http.Transport (HTTP/1.1,
// at most 64 connections per node, or HTTP/2 with one connection per node
// when Options.HTTP2 is set; TLS verified against Target.CACert), with
// preallocated key paths, pooled request bodies, and a version scan instead
// of JSON decoding; vault/api is used for nothing on the hot path (it costs
// more CPU per request; Options.APIClient keeps it for comparison, see
// BenchmarkCPUPerRequest). Options.OnResult costs one nil check when unset.
package load

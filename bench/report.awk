# Turns bench/run.sh's facts file into the Markdown report (md=FILE) and JSON (json=FILE).
# Input lines (tab-separated):
#   meta KEY VALUE
#   row  ID WORKLOAD CLIENTS THREADS MODE TRANSPORT KIND      (KIND: tps | latency)
#   run  ID TARGET ROUND TPS LATENCY_MS                      (TARGET: direct | pgphase | pgbouncer)
#   mem  TARGET VMRSS_BEFORE_KIB VMRSS_AFTER_KIB SESSIONS
# Targets: pgphase TPS >= 1.2x PgBouncer in every throughput row; pgphase >= 0.7x direct in the
# select-only 32-client rows; pgphase's added single-client latency <= PgBouncer's; pgphase
# memory <= 16 KiB per idle session.
# POSIX awk (mawk) only.

$1 == "meta" { meta[$2] = $3; metakeys[++nmeta] = $2; next }
$1 == "row" {
  nrows++
  rid[nrows] = $2; rwork[$2] = $3; rclients[$2] = $4; rthreads[$2] = $5
  rmode[$2] = $6; rtrans[$2] = $7; rkind[$2] = $8
  next
}
$1 == "run" {
  k = $2 SUBSEP $3
  n = ++cnt[k]
  tps[k, n] = $5 + 0; lat[k, n] = $6 + 0; rnd[k, n] = $4 + 0
  next
}
$1 == "mem" { mem_before[$2] = $3 + 0; mem_after[$2] = $4 + 0; mem_n[$2] = $5 + 0; mem_seen[$2] = 1; next }

function median(arr, k, n,    i, j, v, tmp) {
  if (n == 0) return ""
  for (i = 1; i <= n; i++) tmp[i] = arr[k, i]
  for (i = 2; i <= n; i++) {
    v = tmp[i]
    for (j = i - 1; j >= 1 && tmp[j] > v; j--) tmp[j + 1] = tmp[j]
    tmp[j + 1] = v
  }
  if (n % 2) return tmp[(n + 1) / 2]
  return (tmp[n / 2] + tmp[n / 2 + 1]) / 2
}
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : a / b }
function fx(x) { return x == "" ? "n/a" : sprintf("%.2fx", x) }
function f0(x) { return x == "" ? "n/a" : sprintf("%.0f", x) }
function f3(x) { return x == "" ? "n/a" : sprintf("%.3f", x) }
function jnum(x) { return x == "" ? "null" : sprintf("%.6g", x) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return "\"" s "\"" }
function transport_label(t) { return t == "unix" ? "unix socket" : "TCP" }
function row_label(id) {
  return rwork[id] ", " rclients[id] " client" (rclients[id] == 1 ? "" : "s") ", " rmode[id] \
    ", backend " transport_label(rtrans[id])
}
function add_target(name, measured, threshold, ok) {
  ntargets++
  tname[ntargets] = name; tmeasured[ntargets] = measured; tthreshold[ntargets] = threshold
  tpass[ntargets] = ok
  if (ok) met++
}

END {
  split("direct pgphase pgbouncer", targets, " ")
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    for (t = 1; t <= 3; t++) {
      k = id SUBSEP targets[t]
      mt[id, targets[t]] = median(tps, k, cnt[k])
      ml[id, targets[t]] = median(lat, k, cnt[k])
    }
  }

  # ---- targets
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] != "tps") continue
    r = ratio(mt[id, "pgphase"], mt[id, "pgbouncer"])
    add_target("pgphase TPS >= 1.2x PgBouncer: " row_label(id), fx(r), ">= 1.20x", r != "" && r >= 1.2)
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] != "tps" || rwork[id] != "select-only" || rclients[id] != 32) continue
    r = ratio(mt[id, "pgphase"], mt[id, "direct"])
    add_target("pgphase TPS >= 0.7x direct: " row_label(id), fx(r), ">= 0.70x", r != "" && r >= 0.7)
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] != "latency") continue
    d = ml[id, "direct"]; p = ml[id, "pgphase"]; b = ml[id, "pgbouncer"]
    if (d != "" && p != "" && b != "") {
      addp = (p - d) * 1000; addb = (b - d) * 1000
      add_target("pgphase added latency <= PgBouncer's: " row_label(id),
                 sprintf("%+.1f us vs %+.1f us", addp, addb), "<= PgBouncer", addp <= addb)
    } else {
      add_target("pgphase added latency <= PgBouncer's: " row_label(id), "n/a", "<= PgBouncer", 0)
    }
  }
  if (mem_seen["pgphase"] && mem_n["pgphase"] > 0) {
    per = (mem_after["pgphase"] - mem_before["pgphase"]) / mem_n["pgphase"]
    add_target("pgphase memory per idle session (" mem_n["pgphase"] " sessions)",
               sprintf("%.1f KiB", per), "<= 16 KiB", per <= 16)
  } else {
    add_target("pgphase memory per idle session", "n/a", "<= 16 KiB", 0)
  }

  # ---- Markdown
  print "# pgphase benchmark, " meta["timestamp"] > md
  print "" > md
  if (meta["quick"] == 1)
    print "**Quick run** (`--quick`): smoke-test durations, the figures are indicative only.\n" > md
  printf "- Machine: %s CPUs (%s), Linux %s\n", meta["cpus"], meta["cpu_model"], meta["kernel"] > md
  printf "- %s (git %s), --workers %s; PostgreSQL %s (%s); PgBouncer %s (%s); pgbench %s\n",
    meta["pgphase_version"], meta["pgphase_git"], meta["pgphase_workers"], meta["postgresql"], meta["postgresql_settings"],
    meta["pgbouncer"], meta["pgbouncer_settings"], meta["pgbench"] > md
  printf "- pgbench scale %s; %s s per run, %s round(s) in round-robin order (direct, pgphase, PgBouncer alternate); figures are medians over rounds; clients connect over TCP loopback, \"backend\" is the proxy-to-PostgreSQL link (direct runs always use TCP)\n\n",
    meta["scale"], meta["duration_s"], meta["rounds"] > md

  print "## Throughput (median TPS, ratio to direct)\n" > md
  print "| Workload | Clients | Mode | Backend | Direct TPS | pgphase TPS | PgBouncer TPS | pgphase / PgBouncer |" > md
  print "|---|---:|---|---|---:|---:|---:|---:|" > md
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    printf "| %s | %s | %s | %s | %s | %s (%s) | %s (%s) | %s |\n", rwork[id], rclients[id], rmode[id],
      transport_label(rtrans[id]), f0(mt[id, "direct"]),
      f0(mt[id, "pgphase"]), fx(ratio(mt[id, "pgphase"], mt[id, "direct"])),
      f0(mt[id, "pgbouncer"]), fx(ratio(mt[id, "pgbouncer"], mt[id, "direct"])),
      fx(ratio(mt[id, "pgphase"], mt[id, "pgbouncer"])) > md
  }
  print "" > md
  print "## Latency (median of pgbench's average latency, ms; added vs direct in us)\n" > md
  print "| Workload | Clients | Mode | Backend | Direct | pgphase | PgBouncer |" > md
  print "|---|---:|---|---|---:|---:|---:|" > md
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    d = ml[id, "direct"]; p = ml[id, "pgphase"]; b = ml[id, "pgbouncer"]
    printf "| %s | %s | %s | %s | %s | %s (%s) | %s (%s) |\n", rwork[id], rclients[id], rmode[id],
      transport_label(rtrans[id]), f3(d),
      f3(p), (d == "" || p == "") ? "n/a" : sprintf("%+.0f us", (p - d) * 1000),
      f3(b), (d == "" || b == "") ? "n/a" : sprintf("%+.0f us", (b - d) * 1000) > md
  }
  print "" > md
  print "## Memory with idle client sessions (VmRSS of the proxy process)\n" > md
  print "| Process | Sessions | VmRSS before | VmRSS after | Per session |" > md
  print "|---|---:|---:|---:|---:|" > md
  split("pgphase pgbouncer", mt_names, " ")
  for (t = 1; t <= 2; t++) {
    name = mt_names[t]
    if (!mem_seen[name]) continue
    printf "| %s | %d | %d KiB | %d KiB | %.1f KiB |\n", name == "pgphase" ? "pgphase" : "PgBouncer",
      mem_n[name], mem_before[name], mem_after[name],
      (mem_after[name] - mem_before[name]) / mem_n[name] > md
  }
  print "" > md
  print "## Targets\n" > md
  print "| Target | Measured | Threshold | Result |" > md
  print "|---|---:|---:|---|" > md
  for (i = 1; i <= ntargets; i++)
    printf "| %s | %s | %s | %s |\n", tname[i], tmeasured[i], tthreshold[i], tpass[i] ? "PASS" : "MISS" > md
  printf "\n%d of %d targets met. The 1.2x-PgBouncer rule applies to the multi-client throughput rows; the 1-client row is judged on added latency.\n", met, ntargets > md

  # ---- JSON
  print "{" > json
  printf "  \"meta\": {" > json
  for (i = 1; i <= nmeta; i++) {
    v = meta[metakeys[i]]
    printf "%s\n    %s: %s", (i > 1 ? "," : ""), jstr(metakeys[i]),
      (v ~ /^(0|[1-9][0-9]*)(\.[0-9]+)?$/ ? v : jstr(v)) > json
  }
  print "\n  }," > json
  printf "  \"rows\": [" > json
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    printf "%s\n    {\"id\": %s, \"workload\": %s, \"clients\": %d, \"threads\": %d, \"mode\": %s, \"backend_transport\": %s, \"kind\": %s,\n",
      (i > 1 ? "," : ""), jstr(id), jstr(rwork[id]), rclients[id], rthreads[id], jstr(rmode[id]),
      jstr(rtrans[id]), jstr(rkind[id]) > json
    printf "     \"runs\": {" > json
    for (t = 1; t <= 3; t++) {
      k = id SUBSEP targets[t]
      printf "%s%s: [", (t > 1 ? ", " : ""), jstr(targets[t]) > json
      for (n = 1; n <= cnt[k]; n++)
        printf "%s{\"round\": %d, \"tps\": %s, \"latency_ms\": %s}", (n > 1 ? ", " : ""), rnd[k, n],
          jnum(tps[k, n]), jnum(lat[k, n]) > json
      printf "]" > json
    }
    printf "},\n     \"median\": {" > json
    for (t = 1; t <= 3; t++)
      printf "%s%s: {\"tps\": %s, \"latency_ms\": %s}", (t > 1 ? ", " : ""), jstr(targets[t]),
        jnum(mt[id, targets[t]]), jnum(ml[id, targets[t]]) > json
    d = ml[id, "direct"]; p = ml[id, "pgphase"]; b = ml[id, "pgbouncer"]
    printf "},\n     \"tps_ratio_to_direct\": {\"pgphase\": %s, \"pgbouncer\": %s}, \"pgphase_over_pgbouncer\": %s,\n",
      jnum(ratio(mt[id, "pgphase"], mt[id, "direct"])), jnum(ratio(mt[id, "pgbouncer"], mt[id, "direct"])),
      jnum(ratio(mt[id, "pgphase"], mt[id, "pgbouncer"])) > json
    printf "     \"added_latency_us\": {\"pgphase\": %s, \"pgbouncer\": %s}}",
      (d == "" || p == "") ? "null" : jnum((p - d) * 1000),
      (d == "" || b == "") ? "null" : jnum((b - d) * 1000) > json
  }
  print "\n  ]," > json
  printf "  \"memory\": {" > json
  first = 1
  for (t = 1; t <= 2; t++) {
    name = mt_names[t]
    if (!mem_seen[name]) continue
    printf "%s\n    %s: {\"sessions\": %d, \"vmrss_before_kib\": %d, \"vmrss_after_kib\": %d, \"per_session_kib\": %s}",
      (first ? "" : ","), jstr(name), mem_n[name], mem_before[name], mem_after[name],
      jnum((mem_after[name] - mem_before[name]) / mem_n[name]) > json
    first = 0
  }
  print "\n  }," > json
  printf "  \"targets\": [" > json
  for (i = 1; i <= ntargets; i++)
    printf "%s\n    {\"name\": %s, \"measured\": %s, \"threshold\": %s, \"pass\": %s}", (i > 1 ? "," : ""),
      jstr(tname[i]), jstr(tmeasured[i]), jstr(tthreshold[i]), tpass[i] ? "true" : "false" > json
  print "\n  ]," > json
  printf "  \"summary\": {\"targets_met\": %d, \"targets_total\": %d}\n}\n", met, ntargets > json
}

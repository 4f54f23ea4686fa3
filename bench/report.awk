# Turns bench/run.sh's facts file into the Markdown report (md=FILE) and JSON (json=FILE).
# Input lines (tab-separated):
#   meta KEY VALUE
#   row  ID WORKLOAD CLIENTS THREADS MODE TRANSPORT KIND CPUS TARGETS
#        KIND: tps | latency; CPUS: shared (no affinity) | pinned (PostgreSQL on one CPU, pgbench
#        and the proxies on another); TARGETS: the targets measured in the row, comma-separated
#   run  ID TARGET ROUND TPS LATENCY_MS
#        TARGET: direct | pgphase (pass-through) | pgphase+cp (control plane, no migration) |
#        pgphase+cp+mig (control plane, an unrelated table migrating in dual_write) | pgbouncer |
#        pgphase(base), pgphase+cp(base) (the same two with PGPHASE_BASELINE_BIN) | pgphase-alt
#        (pass-through with --workers meta[workers_alt], only in row meta[workers_alt_row])
#   cpu  ID TARGET ROUND TXNS PROXY PGBENCH POSTGRESQL PROXIES KTHREADS TOTAL IDLE IRQ STEAL
#        CPU clock ticks (1/meta[clk_tck] s) during that run: PROXY = the target's proxy process
#        ("-" for direct), PROXIES = all proxy processes, KTHREADS = kernel threads; TOTAL, IDLE
#        (idle+iowait), IRQ (irq+softirq), STEAL from /proc/stat over all CPUs. TXNS = pgbench's
#        "number of transactions actually processed".
#   load ROUND LOADAVG1 LOADAVG5 LOADAVG15                    (/proc/loadavg before the round)
#   mem  TARGET VMRSS_BEFORE_KIB VMRSS_AFTER_KIB SESSIONS
# Targets (PASS/MISS), per row where both sides were measured: pgphase TPS >= 1.2x PgBouncer in
# every throughput row (shared and pinned); pgphase >= 0.7x direct in the select-only 32-client
# rows; pgphase proxy CPU per transaction <= 0.8x PgBouncer's in the select-only 8- and 32-client
# TCP rows; pgphase+cp TPS >= 0.97x pgphase and pgphase+cp+mig >= 0.95x pgphase in every
# throughput row; pgphase's added single-client latency <= PgBouncer's; pgphase memory <= 16 KiB
# per idle session. Baseline comparisons are informational.
# POSIX awk (mawk) only.

$1 == "meta" { meta[$2] = $3; metakeys[++nmeta] = $2; next }
$1 == "row" {
  nrows++
  rid[nrows] = $2; rwork[$2] = $3; rclients[$2] = $4; rthreads[$2] = $5
  rmode[$2] = $6; rtrans[$2] = $7; rkind[$2] = $8; rcpus[$2] = $9
  n = split($10, tl, ",")
  for (i = 1; i <= n; i++) rhas[$2, tl[i]] = 1
  next
}
$1 == "run" {
  k = $2 SUBSEP $3
  n = ++cnt[k]
  tps[k, n] = $5 + 0; lat[k, n] = $6 + 0; rnd[k, n] = $4 + 0
  present[$3] = 1
  next
}
$1 == "cpu" {
  k = $2 SUBSEP $3
  r = $4 + 0
  cseen[k, r] = 1
  ctxn[k, r] = $5 + 0; cproxy[k, r] = $6; cpgb[k, r] = $7 + 0; cpg[k, r] = $8 + 0; cprox[k, r] = $9 + 0
  ckthr[k, r] = $10 + 0; ctot[k, r] = $11 + 0; cidle[k, r] = $12 + 0; cirq[k, r] = $13 + 0
  csteal[k, r] = $14 + 0
  ncpu++; cpu_k[ncpu] = k; cpu_r[ncpu] = r
  next
}
$1 == "load" { load1[$2 + 0] = $3; load5[$2 + 0] = $4; load15[$2 + 0] = $5; next }
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
function minv(arr, k, n,    i, m) {
  if (n == 0) return ""
  m = arr[k, 1]
  for (i = 2; i <= n; i++) if (arr[k, i] < m) m = arr[k, i]
  return m
}
function maxv(arr, k, n,    i, m) {
  if (n == 0) return ""
  m = arr[k, 1]
  for (i = 2; i <= n; i++) if (arr[k, i] > m) m = arr[k, i]
  return m
}
# Proxy CPU µs per transaction of run (k, round); "" for direct runs or without transactions.
function cpu_us(k, r) {
  if (!((k, r) in cseen) || cproxy[k, r] == "-" || ctxn[k, r] <= 0) return ""
  return cproxy[k, r] * 1e6 / clk / ctxn[k, r]
}
function pct(x, tot) { return tot > 0 ? x * 100 / tot : "" }
function f1(x) { return x == "" ? "n/a" : sprintf("%.1f", x) }
function fpct(x,    v) {
  if (x == "") return "n/a"
  v = sprintf("%.0f", x)
  return (v == "-0" ? "0" : v) "%"
}
function us_cell(id, t,    k) {
  k = id SUBSEP t
  if (ucnt[k] == 0) return "n/a"
  if (ucnt[k] == 1) return sprintf("%.1f", mu[id, t])
  return sprintf("%.1f (%.1f-%.1f)", mu[id, t], minv(us, k, ucnt[k]), maxv(us, k, ucnt[k]))
}
# JSON for one run: round, tps, latency and, when recorded, transactions, proxy CPU and CPU ticks.
function jrun(k, n,    r, s) {
  r = rnd[k, n]
  s = sprintf("{\"round\": %d, \"tps\": %s, \"latency_ms\": %s", r, jnum(tps[k, n]), jnum(lat[k, n]))
  if ((k, r) in cseen) {
    s = s sprintf(", \"transactions\": %d, \"proxy_cpu_us_per_txn\": %s, \"cpu_ticks\": {\"proxy\": %s, \"pgbench\": %d, \"postgresql\": %d, \"all_proxies\": %d, \"kernel_threads\": %d, \"machine_total\": %d, \"machine_idle\": %d, \"machine_irq_softirq\": %d, \"machine_steal\": %d}, \"machine_pct\": {\"busy\": %s, \"postgresql_pgbench_proxies\": %s, \"kernel\": %s, \"steal\": %s, \"other_processes\": %s, \"irq_softirq\": %s}",
      ctxn[k, r], jnum(cpu_us(k, r)), cproxy[k, r] == "-" ? "null" : cproxy[k, r] + 0, cpgb[k, r], cpg[k, r],
      cprox[k, r], ckthr[k, r], ctot[k, r], cidle[k, r], cirq[k, r], csteal[k, r],
      jnum(mbusy[k, r]), jnum(mours[k, r]), jnum(mkern[k, r]), jnum(msteal[k, r]), jnum(mother[k, r]), jnum(mirq[k, r]))
  }
  return s "}"
}
function jus(id, t,    k) {
  k = id SUBSEP t
  return sprintf("{\"median\": %s, \"min\": %s, \"max\": %s}", jnum(mu[id, t]), jnum(minv(us, k, ucnt[k])),
    jnum(maxv(us, k, ucnt[k])))
}
function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : a / b }
function fx(x) { return x == "" ? "n/a" : sprintf("%.2fx", x) }
function f0(x) { return x == "" ? "n/a" : sprintf("%.0f", x) }
function f3(x) { return x == "" ? "n/a" : sprintf("%.3f", x) }
function jnum(x) { return x == "" ? "null" : sprintf("%.6g", x) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return "\"" s "\"" }
function transport_label(t) { return t == "unix" ? "unix socket" : "TCP" }
function cpus_label(id) { return rcpus[id] == "pinned" ? "pinned" : "shared" }
function row_label(id) {
  return rwork[id] ", " rclients[id] " client" (rclients[id] == 1 ? "" : "s") ", " rmode[id] \
    ", backend " transport_label(rtrans[id]) ", " cpus_label(id) " CPUs"
}
function row_cells(id) {
  return sprintf("| %s | %s | %s | %s | %s |", cpus_label(id), rwork[id], rclients[id], rmode[id],
    transport_label(rtrans[id]))
}
function alt_cells(id) {
  return sprintf("| %s | %s (%s) | %s | %s | %s |", cpus_label(id), alt_label, rwork[id], rclients[id],
    rmode[id], transport_label(rtrans[id]))
}
function has(id, t) { return (id SUBSEP t) in rhas && cnt[id SUBSEP t] > 0 }
function add_target(name, measured, threshold, ok) {
  ntargets++
  tname[ntargets] = name; tmeasured[ntargets] = measured; tthreshold[ntargets] = threshold
  tpass[ntargets] = ok
  if (ok) met++
}
function ratio_target(id, a, b, min, what,    r) {
  if (!has(id, a) || !has(id, b)) return
  r = ratio(mt[id, a], mt[id, b])
  add_target(what ": " row_label(id), fx(r), sprintf(">= %.2fx", min), r != "" && r >= min)
}
# TPS pairs (numerator / denominator) reported in the ratio table; CPU pairs the same.
function add_pair(a, b) {
  if (!present[a] || !present[b]) return
  npairs++; pa[npairs] = a; pb[npairs] = b
}
# JSON members "a / b": ratio of m[id, a] to m[id, b] for the pairs measured in row id.
function jratios(id, m,    p, s) {
  s = ""
  for (p = 1; p <= npairs; p++)
    if (has(id, pa[p]) && has(id, pb[p]))
      s = s (s == "" ? "" : ", ") jstr(pa[p] " / " pb[p]) ": " jnum(ratio(m[id, pa[p]], m[id, pb[p]]))
  return s
}
# The cell of column target t in the extra row of the --workers instance: only pgphase's.
function alt_t(t) { return t == "pgphase" ? "pgphase-alt" : "" }

END {
  ntall = split("direct pgphase pgphase+cp pgphase+cp+mig pgbouncer pgphase(base) pgphase+cp(base) pgphase-alt", tall, " ")
  clk = meta["clk_tck"] + 0
  if (clk <= 0) clk = 100
  alt = meta["workers_alt"] + 0
  arow = meta["workers_alt_row"]
  alt_label = "pgphase --workers " alt
  nr = meta["rounds"] + 0
  irq_sep = meta["irq_time_accounting"] == "y"
  tlabel["direct"] = "Direct"; tlabel["pgbouncer"] = "PgBouncer"; tlabel["pgphase-alt"] = alt_label
  for (t = 1; t <= ntall; t++) if (!(tall[t] in tlabel)) tlabel[tall[t]] = tall[t]
  # columns: the targets measured, in tall's order (the --workers instance is an extra table row)
  ncol = 0
  for (t = 1; t <= ntall; t++) if (present[tall[t]] && tall[t] != "pgphase-alt") col[++ncol] = tall[t]
  npcol = 0
  for (t = 1; t <= ncol; t++) if (col[t] != "direct") pcol[++npcol] = col[t]
  add_pair("pgphase", "pgbouncer"); add_pair("pgphase+cp", "pgbouncer"); add_pair("pgphase+cp+mig", "pgbouncer")
  add_pair("pgphase+cp", "pgphase"); add_pair("pgphase+cp+mig", "pgphase")
  add_pair("pgphase", "pgphase(base)"); add_pair("pgphase+cp", "pgphase+cp(base)")
  add_pair("pgphase(base)", "pgbouncer"); add_pair("pgphase+cp(base)", "pgbouncer")
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    for (t = 1; t <= ntall; t++) {
      k = id SUBSEP tall[t]
      mt[id, tall[t]] = median(tps, k, cnt[k])
      ml[id, tall[t]] = median(lat, k, cnt[k])
      # proxy CPU µs per transaction, one value per round that has one
      ucnt[k] = 0
      for (n = 1; n <= cnt[k]; n++) {
        v = cpu_us(k, rnd[k, n])
        if (v != "") us[k, ++ucnt[k]] = v
      }
      mu[id, tall[t]] = median(us, k, ucnt[k])
    }
    if (rcpus[id] == "pinned") has_pinned = 1
  }
  has_alt = alt > 0 && cnt[arow SUBSEP "pgphase-alt"] > 0

  # ---- machine load: per run shares of all CPUs' time, then per round and overall
  for (i = 1; i <= ncpu; i++) {
    k = cpu_k[i]; r = cpu_r[i]; tot = ctot[k, r]
    busy = tot - cidle[k, r]
    ours = cpgb[k, r] + cpg[k, r] + cprox[k, r]
    # irq/softirq time is inside the process times unless the kernel accounts it separately.
    kern = ckthr[k, r] + (irq_sep ? cirq[k, r] : 0)
    other = busy - ours - kern - csteal[k, r]
    mbusy[k, r] = pct(busy, tot); mours[k, r] = pct(ours, tot); mkern[k, r] = pct(kern, tot)
    msteal[k, r] = pct(csteal[k, r], tot); mother[k, r] = pct(other, tot); mirq[k, r] = pct(cirq[k, r], tot)
    if (tot <= 0) continue
    n = ++lcnt[r]
    lbusy[r, n] = mbusy[k, r]; lours[r, n] = mours[k, r]; lkern[r, n] = mkern[k, r]
    lsteal[r, n] = msteal[k, r]; lother[r, n] = mother[k, r]; lirq[r, n] = mirq[k, r]
    aother["all", ++acnt] = mother[k, r]
  }

  # ---- targets, grouped by kind
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] == "tps") ratio_target(id, "pgphase", "pgbouncer", 1.2, "pgphase TPS >= 1.2x PgBouncer")
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] == "tps" && rwork[id] == "select-only" && rclients[id] == 32)
      ratio_target(id, "pgphase", "direct", 0.7, "pgphase TPS >= 0.7x direct")
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] != "tps" || rwork[id] != "select-only" || (rclients[id] != 8 && rclients[id] != 32) ||
        rtrans[id] != "tcp" || !has(id, "pgphase") || !has(id, "pgbouncer")) continue
    r = ratio(mu[id, "pgphase"], mu[id, "pgbouncer"])
    add_target("pgphase proxy CPU per transaction <= 0.8x PgBouncer's: " row_label(id),
      r == "" ? "n/a" : sprintf("%.2fx (%.1f vs %.1f µs)", r, mu[id, "pgphase"], mu[id, "pgbouncer"]), "<= 0.80x",
      r != "" && r <= 0.8)
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] == "tps")
      ratio_target(id, "pgphase+cp", "pgphase", 0.97, "pgphase+cp (control plane, no migration) TPS >= 0.97x pass-through")
  }
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    if (rkind[id] == "tps")
      ratio_target(id, "pgphase+cp+mig", "pgphase", 0.95, "pgphase+cp+mig (unrelated migration in dual_write) TPS >= 0.95x pass-through")
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
  printf "- Configurations: pgphase = pass-through (no control plane); pgphase+cp = with a control plane (%s) and no migration; pgphase+cp+mig = with a control plane (%s) and the migration %s in dual_write, so pgbench's tables are not migrating\n",
    meta["cp_control"], meta["mig_control"], meta["mig_tables"] > md
  if (present["pgphase(base)"] || present["pgphase+cp(base)"])
    printf "- Baseline: pgphase(base) and pgphase+cp(base) are the same two configurations with %s (%s, git %s), in the same rounds\n",
      meta["baseline_bin"], meta["baseline_version"], meta["baseline_git"] > md
  printf "- pgbench scale %s; %s s per run, %s round(s); within a round the targets of each row run in rotating order; figures are medians over rounds; clients connect over TCP loopback, \"backend\" is the proxy-to-PostgreSQL link (direct runs always use TCP)\n",
    meta["scale"], meta["duration_s"], meta["rounds"] > md
  if (has_pinned)
    printf "- CPUs: \"shared\" rows run without CPU affinity; \"pinned\" rows (in the same rounds, after the shared rows) run PostgreSQL (postmaster and every backend) on CPU %s and pgbench and every proxy on CPU %s (taskset)\n",
      meta["pin_pg_cpu"], meta["pin_client_cpu"] > md
  else if (meta["pinned"] != 1)
    print "- CPUs: shared only (BENCH_PINNED=0)" > md
  else
    printf "- CPUs: shared only; the pinned mode was skipped (%s)\n", meta["pinned_skipped"] > md
  if (has_alt)
    printf "- An extra pgphase instance with --workers %s runs in the %s row only, in the same rotation; it is reported as the row \"%s\"\n",
      alt, row_label(arow), alt_label > md
  if (nr >= 2) {
    line = ""
    for (i = 1; i <= nrows; i++) {
      id = rid[i]; k = id SUBSEP "direct"
      lo = minv(tps, k, cnt[k]); hi = maxv(tps, k, cnt[k]); m = mt[id, "direct"]
      line = line (i > 1 ? "; " : "") sprintf("%s: %s-%s (%s of the median)", row_label(id), f0(lo), f0(hi),
        (m == "" || m + 0 == 0) ? "n/a" : sprintf("%.0f%%", (hi - lo) * 100 / m))
    }
    printf "- Noise: direct PostgreSQL TPS varied, min-max over the %d rounds, by %s. TPS ratios are only as reliable as this spread allows; proxy CPU per transaction (below, with its own min-max) is the other comparison\n", nr, line > md
  } else {
    print "- Noise: only 1 round, so the spread of direct TPS across rounds is not measured (use more rounds)" > md
  }
  if (acnt > 0) {
    line = ""
    for (r = 1; r <= nr; r++) if (r in load1) line = line (line == "" ? "" : ", ") load1[r]
    printf "- Machine load: during the runs, processes other than PostgreSQL, pgbench, the proxies and the kernel took a median %s (max %s) of the machine's CPU time (%s CPUs = 100%%); 1-minute load average before each round: %s (see \"Machine load\" below)\n",
      fpct(median(aother, "all", acnt)), fpct(maxv(aother, "all", acnt)), meta["cpus"], line == "" ? "n/a" : line > md
  }
  print "" > md

  # Throughput
  print "## Throughput (median TPS, ratio to direct)\n" > md
  h = "| CPUs | Workload | Clients | Mode | Backend |"; s = "|---|---|---:|---|---|"
  for (c = 1; c <= ncol; c++) { h = h " " tlabel[col[c]] " |"; s = s "---:|" }
  print h > md; print s > md
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    line = row_cells(id)
    for (c = 1; c <= ncol; c++) {
      t = col[c]
      if (!has(id, t)) line = line " |"
      else if (t == "direct") line = line " " f0(mt[id, t]) " |"
      else line = line sprintf(" %s (%s) |", f0(mt[id, t]), fx(ratio(mt[id, t], mt[id, "direct"])))
    }
    print line > md
    if (has_alt && id == arow) {
      line = alt_cells(id)
      for (c = 1; c <= ncol; c++) {
        t = alt_t(col[c])
        line = line (t == "" ? " |" : sprintf(" %s (%s) |", f0(mt[id, t]), fx(ratio(mt[id, t], mt[id, "direct"]))))
      }
      print line > md
    }
  }
  print "" > md
  if (npairs > 0) {
    printf "## TPS ratios (medians: each pgphase configuration against PgBouncer, pgphase+cp and pgphase+cp+mig against the pass-through%s)\n\n",
      (present["pgphase(base)"] || present["pgphase+cp(base)"]) ? ", this build against the baseline" : "" > md
    h = "| CPUs | Workload | Clients | Mode | Backend |"; s = "|---|---|---:|---|---|"
    for (p = 1; p <= npairs; p++) { h = h " " tlabel[pa[p]] " / " tlabel[pb[p]] " |"; s = s "---:|" }
    print h > md; print s > md
    for (i = 1; i <= nrows; i++) {
      id = rid[i]
      line = row_cells(id)
      for (p = 1; p <= npairs; p++)
        line = line ((has(id, pa[p]) && has(id, pb[p])) ? " " fx(ratio(mt[id, pa[p]], mt[id, pb[p]])) " |" : " |")
      print line > md
      if (has_alt && id == arow) {
        line = alt_cells(id)
        for (p = 1; p <= npairs; p++) {
          a = alt_t(pa[p])
          line = line ((a != "" && has(id, pb[p])) ? " " fx(ratio(mt[id, a], mt[id, pb[p]])) " |" : " |")
        }
        print line > md
      }
    }
    print "" > md
  }

  # Latency
  print "## Latency (median of pgbench's average latency, ms; added vs direct in us)\n" > md
  h = "| CPUs | Workload | Clients | Mode | Backend |"; s = "|---|---|---:|---|---|"
  for (c = 1; c <= ncol; c++) { h = h " " tlabel[col[c]] " |"; s = s "---:|" }
  print h > md; print s > md
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    d = ml[id, "direct"]
    line = row_cells(id)
    for (c = 1; c <= ncol; c++) {
      t = col[c]; v = ml[id, t]
      if (!has(id, t)) line = line " |"
      else if (t == "direct") line = line " " f3(v) " |"
      else line = line sprintf(" %s (%s) |", f3(v), (d == "" || v == "") ? "n/a" : sprintf("%+.0f us", (v - d) * 1000))
    }
    print line > md
    if (has_alt && id == arow) {
      line = alt_cells(id)
      for (c = 1; c <= ncol; c++) {
        t = alt_t(col[c]); v = ml[id, t]
        line = line (t == "" ? " |" : sprintf(" %s (%s) |", f3(v), (d == "" || v == "") ? "n/a" : sprintf("%+.0f us", (v - d) * 1000)))
      }
      print line > md
    }
  }
  print "" > md

  # Proxy CPU
  printf "## Proxy CPU per transaction (median µs of proxy CPU per transaction%s; ratios of the medians, < 1.00x = less CPU than the denominator)\n\n", (nr >= 2 ? ", min-max over rounds" : "") > md
  h = "| CPUs | Workload | Clients | Mode | Backend |"; s = "|---|---|---:|---|---|"
  for (c = 1; c <= npcol; c++) { h = h " " tlabel[pcol[c]] " µs |"; s = s "---:|" }
  for (p = 1; p <= npairs; p++) { h = h " " tlabel[pa[p]] " / " tlabel[pb[p]] " |"; s = s "---:|" }
  print h > md; print s > md
  for (i = 1; i <= nrows; i++) {
    id = rid[i]
    line = row_cells(id)
    for (c = 1; c <= npcol; c++) line = line (has(id, pcol[c]) ? " " us_cell(id, pcol[c]) " |" : " |")
    for (p = 1; p <= npairs; p++)
      line = line ((has(id, pa[p]) && has(id, pb[p])) ? " " fx(ratio(mu[id, pa[p]], mu[id, pb[p]])) " |" : " |")
    print line > md
    if (has_alt && id == arow) {
      line = alt_cells(id)
      for (c = 1; c <= npcol; c++) { t = alt_t(pcol[c]); line = line (t == "" ? " |" : " " us_cell(id, t) " |") }
      for (p = 1; p <= npairs; p++) {
        a = alt_t(pa[p])
        line = line ((a != "" && has(id, pb[p])) ? " " fx(ratio(mu[id, a], mu[id, pb[p]])) " |" : " |")
      }
      print line > md
    }
  }
  printf "\nProxy CPU = user + system CPU time of the proxy process (all threads; /proc/PID/stat utime + stime, in 1/%d s ticks) during the pgbench run, divided by the transactions pgbench processed. Lower is better; pgphase / PgBouncer < 1.00x means pgphase does the same work with less CPU (the target is <= 0.80x). PostgreSQL's and pgbench's CPU are not in it; kernel loopback networking is charged to whichever process (or softirq) runs it, so part of it lands here. It measures how much CPU the proxy spent per transaction, not how much CPU it was given, so it is a different view from TPS; it is still not load-independent: CPU and cache contention, steal and event batching (fewer messages per wakeup at lower throughput) shift it, so compare its min-max with the TPS spread before trusting a ratio.\n\n", clk > md

  if (acnt > 0) {
    print "## Machine load during the runs (share of all CPUs' time while pgbench ran; median over the runs of each round)\n" > md
    printf "| Round | Load average before (1/5/15 min) | CPU busy | PostgreSQL + pgbench + proxies | Kernel threads%s | Steal | Other processes (median / max) | irq + softirq (%s) |\n",
      (irq_sep ? " + irq + softirq" : ""), (irq_sep ? "included in Kernel" : "included in the process times") > md
    print "|---:|---|---:|---:|---:|---:|---:|---:|" > md
    for (r = 1; r <= nr; r++) {
      if (!lcnt[r]) continue
      printf "| %d | %s | %s | %s | %s | %s | %s / %s | %s |\n", r,
        (r in load1) ? load1[r] " / " load5[r] " / " load15[r] : "n/a",
        fpct(median(lbusy, r, lcnt[r])), fpct(median(lours, r, lcnt[r])), fpct(median(lkern, r, lcnt[r])),
        fpct(median(lsteal, r, lcnt[r])), fpct(median(lother, r, lcnt[r])), fpct(maxv(lother, r, lcnt[r])),
        fpct(median(lirq, r, lcnt[r])) > md
    }
    printf "\nFrom /proc/stat (all CPUs) and /proc/PID/stat: PostgreSQL = the postmaster and its children (backends that exit count through the postmaster), pgbench = this script's reaped children, proxies = every pgphase instance and PgBouncer. Other processes = busy minus the rest, i.e. other builds and jobs on the machine, system daemons and this script's own bookkeeping. %s Per-process and per-CPU times are accounted separately by the kernel, so the split is approximate (a few %%; small negative values mean about zero).\n\n",
      irq_sep ? "The kernel accounts irq/softirq time separately (CONFIG_IRQ_TIME_ACCOUNTING=y), so it is subtracted on its own." : (meta["irq_time_accounting"] == "n" ? "Without CONFIG_IRQ_TIME_ACCOUNTING (this kernel) irq/softirq time (mostly loopback networking) is also charged to the interrupted processes, so it is not subtracted again." : "Whether the kernel charges irq/softirq time to processes is unknown here; it is assumed so and not subtracted again (if not, \"other\" includes it).") > md
  }
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
  printf "\n%d of %d targets met. The 1.2x-PgBouncer, control-plane and migration rules apply to the multi-client throughput rows; the 1-client row is judged on added latency.\n", met, ntargets > md
  # informational: new against base
  if (present["pgphase(base)"] || present["pgphase+cp(base)"]) {
    print "\nInformational, not targets: this build against the baseline (TPS ratio > 1.00x and CPU ratio < 1.00x: this build is better).\n" > md
    split("pgphase pgphase+cp", bn, " ")
    for (i = 1; i <= nrows; i++) {
      id = rid[i]
      for (b = 1; b <= 2; b++) {
        nw = bn[b]; ba = nw "(base)"
        if (!has(id, nw) || !has(id, ba)) continue
        info_name[++ninfo] = nw " against " ba ": " row_label(id)
        info_val[ninfo] = sprintf("TPS %s vs %s: %s; CPU %s vs %s µs/txn: %s; latency %s vs %s ms", f0(mt[id, nw]),
          f0(mt[id, ba]), fx(ratio(mt[id, nw], mt[id, ba])), f1(mu[id, nw]), f1(mu[id, ba]),
          fx(ratio(mu[id, nw], mu[id, ba])), f3(ml[id, nw]), f3(ml[id, ba]))
        printf "- %s: %s\n", info_name[ninfo], info_val[ninfo] > md
      }
    }
  }

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
    printf "%s\n    {\"id\": %s, \"workload\": %s, \"clients\": %d, \"threads\": %d, \"mode\": %s, \"backend_transport\": %s, \"kind\": %s, \"cpus\": %s,\n",
      (i > 1 ? "," : ""), jstr(id), jstr(rwork[id]), rclients[id], rthreads[id], jstr(rmode[id]),
      jstr(rtrans[id]), jstr(rkind[id]), jstr(cpus_label(id)) > json
    printf "     \"targets\": {" > json
    first = 1
    for (t = 1; t <= ntall; t++) {
      tt = tall[t]
      if (!has(id, tt)) continue
      k = id SUBSEP tt; d = ml[id, "direct"]; v = ml[id, tt]
      printf "%s\n       %s: {\"median\": {\"tps\": %s, \"latency_ms\": %s}, \"tps_ratio_to_direct\": %s, \"added_latency_us\": %s, \"proxy_cpu_us_per_txn\": %s,\n         \"runs\": [",
        (first ? "" : ","), jstr(tt), jnum(mt[id, tt]), jnum(v), jnum(ratio(mt[id, tt], mt[id, "direct"])),
        (tt == "direct" || d == "" || v == "") ? "null" : jnum((v - d) * 1000), tt == "direct" ? "null" : jus(id, tt) > json
      for (n = 1; n <= cnt[k]; n++) printf "%s%s", (n > 1 ? ", " : ""), jrun(k, n) > json
      printf "]}" > json
      first = 0
    }
    printf "},\n     \"tps_ratios\": {%s},\n     \"proxy_cpu_ratios\": {%s", jratios(id, mt), jratios(id, mu) > json
    k = id SUBSEP "direct"
    printf "},\n     \"direct_tps_min_max\": [%s, %s]}", jnum(minv(tps, k, cnt[k])), jnum(maxv(tps, k, cnt[k])) > json
  }
  print "\n  ]," > json
  printf "  \"machine_load\": {\"median_other_processes_pct\": %s, \"max_other_processes_pct\": %s, \"rounds\": [",
    jnum(median(aother, "all", acnt)), jnum(maxv(aother, "all", acnt)) > json
  first = 1
  for (r = 1; r <= nr; r++) {
    if (!lcnt[r] && !(r in load1)) continue
    printf "%s\n    {\"round\": %d, \"loadavg_before\": %s, \"median_pct\": {\"busy\": %s, \"postgresql_pgbench_proxies\": %s, \"kernel\": %s, \"steal\": %s, \"other_processes\": %s, \"irq_softirq\": %s}, \"max_other_processes_pct\": %s}",
      (first ? "" : ","), r, (r in load1) ? "[" load1[r] + 0 ", " load5[r] + 0 ", " load15[r] + 0 "]" : "null",
      jnum(median(lbusy, r, lcnt[r])), jnum(median(lours, r, lcnt[r])), jnum(median(lkern, r, lcnt[r])),
      jnum(median(lsteal, r, lcnt[r])), jnum(median(lother, r, lcnt[r])), jnum(median(lirq, r, lcnt[r])),
      jnum(maxv(lother, r, lcnt[r])) > json
    first = 0
  }
  print "\n  ]}," > json
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
  printf "  \"informational\": [" > json
  for (i = 1; i <= ninfo; i++)
    printf "%s\n    {\"name\": %s, \"measured\": %s}", (i > 1 ? "," : ""), jstr(info_name[i]), jstr(info_val[i]) > json
  print "\n  ]," > json
  printf "  \"summary\": {\"targets_met\": %d, \"targets_total\": %d}\n}\n", met, ntargets > json
}

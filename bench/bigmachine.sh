#!/usr/bin/env bash
# The big-machine check: every part of blastune that turns measurements into advice, run once on
# this machine, with the documents written to one folder to read or send.
#
#   bench/bigmachine.sh [--quick] [--force] [OUT_DIR]      (OUT_DIR default: ./bigmachine-out)
#
# Runs: info (and info --measure), doctor (and doctor --jobs J), the truth of blastune.limit by
# per-thread CPU time (bench/limit_truth.py: limit(1), limit(4), limit(jobs=4)), a short sweep,
# jobs, recommend --from the jobs file, bench/oversubscription.py and bench/limit_overhead.py.
# Sized to finish in under 5 minutes on a 16-core machine: the sweep and jobs run on time budgets,
# the fixed-work benchmarks scale their work with the cores (nproc). --quick runs everything on
# small sizes and short budgets (about a minute on 2 cores), to check the script itself.
# Needs nothing but blastune (on PATH, or $BLASTUNE) and the python it runs in, with numpy and
# scipy. The profile is left alone (--no-save-profile). Exit status: 0 when every step succeeded,
# 1 when one failed (the others still ran; SUMMARY.md says which), 2 for a bad argument or OUT_DIR.
set -u

usage() { echo "usage: bench/bigmachine.sh [--quick] [--force] [OUT_DIR]" >&2; exit 2; }

quick=0 force=0 out=""
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --force) force=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        -*) echo "bigmachine.sh: error: unknown option '$arg' (allowed: --quick, --force)" >&2
            exit 2 ;;
        *) [ -z "$out" ] || usage; out=$arg ;;
    esac
done
out=${out:-./bigmachine-out}
here=$(cd "$(dirname "$0")" && pwd)

blastune=${BLASTUNE:-$(command -v blastune || true)}
if [ -z "$blastune" ] || [ ! -x "$blastune" ]; then
    echo "bigmachine.sh: error: no blastune on PATH (pip install -e . there, or set BLASTUNE)" >&2
    exit 2
fi
# the python the benchmarks run in needs the same blastune, numpy and scipy: $PYTHON, else the
# console script's own interpreter (its #! line), else python3 / python on PATH
read -r -a shebang < <(head -n1 "$blastune" | sed -n 's/^#! *//p')
case "${shebang[0]:-}" in
    */env) from_script=$(command -v "${shebang[1]:-}" || true) ;;
    */python*) from_script=${shebang[0]} ;;
    *) from_script="" ;;  # a wrapper (a pyenv shim, a shell script)
esac
python="" needs="import blastune, numpy, scipy, tabulate"
for candidate in "${PYTHON:-}" "$from_script" "$(command -v python3)" "$(command -v python)"; do
    if [ -n "$candidate" ] && "$candidate" -c "$needs" 2>/dev/null; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ]; then
    echo "bigmachine.sh: error: no python that imports blastune, numpy and scipy (set PYTHON)" >&2
    exit 2
fi

# nothing a user saved is replaced silently: an existing folder with files in it needs --force
if [ -e "$out" ] && [ ! -d "$out" ]; then
    echo "bigmachine.sh: error: $out exists and is not a folder" >&2; exit 2
fi
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ "$force" -eq 0 ]; then
    echo "bigmachine.sh: error: $out is not empty (pass --force to write over its files)" >&2
    exit 2
fi
mkdir -p "$out" || exit 2

cores=$(nproc)
jobs=$(( cores >= 4 ? 4 : cores ))   # the concurrent jobs doctor and recommend are asked about
force_flag=$([ "$force" -eq 1 ] && echo --force)
if [ "$quick" -eq 1 ]; then
    sweep=(--op dot --size 200,400 --budget 6 --min-repeats 3)
    jobs_args=(--op dot --size 200 --tasks 200 --budget 15 --repeats 1)
    over=(--procs "$cores" --size 200 --calls 20 --rounds 1)
    overhead=(--rounds 3 --calls 200)
    truth=(--size 400 --seconds 0.3)
else
    # the sweep and jobs spend a budget however many cores there are; the fixed work of
    # oversubscription.py grows with the processes (one per core), so its calls per process stay
    # put and its wall time stays near 10-20 s a layout on 2 to 64 cores
    sweep=(--op dot,inv --size 1000,2000 --budget 60)
    jobs_args=(--op dot --size 300 --budget 60)
    over=(--procs "$cores" --size 300 --calls 200 --rounds 3)
    overhead=(--rounds 15 --calls 2000)
    truth=(--size 1000 --seconds 1)
fi

summary="$out/SUMMARY.md"
failed=0 nonzero=()
start_all=$(date +%s.%N)
{
    echo "# blastune big-machine check"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname), $cores CPUs (nproc), $($python -V 2>&1);"
    echo "blastune: $blastune; mode: $([ "$quick" -eq 1 ] && echo quick || echo full)"
    echo
    echo "| step | command | exit | seconds | output |"
    echo "|---|---|---|---|---|"
} > "$summary"

# step NAME FILE COMMAND...: run it, stdout to FILE, stderr to FILE.err, one summary row
step() {
    local name=$1 file=$2
    shift 2
    echo "== $name: $*" >&2
    local t0 t1 rc
    t0=$(date +%s.%N)
    "$@" > "$out/$file" 2> "$out/$file.err"
    rc=$?
    t1=$(date +%s.%N)
    [ -s "$out/$file.err" ] || rm -f "$out/$file.err"
    [ "$rc" -eq 0 ] || { failed=1; nonzero+=("$name (exit $rc)"); }
    printf '| %s | `%s` | %s | %.1f | %s |\n' "$name" "$*" "$rc" \
        "$(awk "BEGIN {print $t1 - $t0}")" "$file" >> "$summary"
    echo "   exit $rc" >&2
}

export COLUMNS=${COLUMNS:-120}
step info info.txt "$blastune" info
step "info --measure" info.json "$blastune" info --json --measure
step doctor doctor.txt "$blastune" doctor
step "doctor --jobs $jobs" doctor-jobs.json "$blastune" doctor --json --jobs "$jobs"
step "limit truth" limit-truth.txt "$python" "$here/limit_truth.py" "${truth[@]}" \
    --limits default,1,4,jobs=4
step sweep sweep.txt "$blastune" sweep "${sweep[@]}" --quiet --out "$out/sweep.json" $force_flag
step jobs jobs.txt "$blastune" jobs "${jobs_args[@]}" --quiet --no-save-profile \
    --out "$out/jobs.json" $force_flag
step "recommend --jobs $jobs" recommend.txt "$blastune" recommend --from "$out/jobs.json" \
    --jobs "$jobs" --no-save-profile
[ "$cores" -eq "$jobs" ] ||
    step "recommend --jobs $cores" recommend-all.txt "$blastune" recommend --from "$out/jobs.json" \
        --jobs "$cores" --no-save-profile
step oversubscription oversubscription.txt "$python" "$here/oversubscription.py" "${over[@]}"
step "limit overhead" limit-overhead.txt "$python" "$here/limit_overhead.py" "${overhead[@]}"

total=$(awk "BEGIN {print $(date +%s.%N) - $start_all}")
{
    echo
    verdict="every step exited 0"
    # recommend exits 2 when it refuses advice from noisy measurements: a result, said as it is
    [ "$failed" -eq 0 ] || verdict="non-zero exit: $(IFS=,; echo "${nonzero[*]}" | sed 's/,/, /g')"
    printf 'total: %.0f s; %s\n' "$total" "$verdict"
    for f in limit-truth.txt sweep.txt jobs.txt recommend.txt recommend-all.txt \
             oversubscription.txt limit-overhead.txt; do
        [ -s "$out/$f" ] || continue
        printf '\n## %s\n\n```\n' "$f"
        cat "$out/$f"
        printf '```\n'
    done
    for f in "$out"/*.err; do  # what the steps said on stderr: errors, refusals, warnings
        [ -s "$f" ] || continue
        printf '\n## %s\n\n```\n' "$(basename "$f")"
        cat "$f"
        printf '```\n'
    done
} >> "$summary"
echo "wrote $out ($(printf '%.0f' "$total") s); see $summary" >&2
exit "$failed"

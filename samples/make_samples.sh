#!/usr/bin/env bash
# Build the sample call from script.tsv: stereo.wav (agent left, customer right), mono.wav,
# transcript.json (a POST /v1/jobs body) and transcript.txt. Deterministic: same espeak-ng and
# sox versions give byte-identical files. Needs espeak-ng and sox (Debian packages).
#
# script.tsv holds one turn per line: role, start_ms, end_ms, text (tab-separated, with a header).
# end_ms is where the synthesized speech really ends; if a new espeak-ng renders a turn at a
# different length the script stops and says which line to update, so the timings stay true.
set -euo pipefail

readonly RATE=16000
readonly SAMPLES_PER_MS=$((RATE / 1000))
readonly TOLERANCE_MS=20
readonly TAIL_MS=500
readonly AGENT_VOICE=(-v en-us+f3 -s 180 -p 55)
readonly CUSTOMER_VOICE=(-v en-gb+m3 -s 160 -p 35)
# -R: repeatable (fixed seeds, no timestamps); -D: no dither, so output depends only on input.
readonly SOX=(sox -R -D)
readonly PCM=(-r "$RATE" -b 16 -e signed-integer)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/script.tsv"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in espeak-ng sox soxi; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

# Render one turn to exactly (end_ms - start_ms) of 16 kHz mono speech, silence trimmed at both ends.
synth_turn() {
  local index=$1 role=$2 start_ms=$3 end_ms=$4 text=$5 out=$6
  local -a voice
  case "$role" in
    agent) voice=("${AGENT_VOICE[@]}") ;;
    customer) voice=("${CUSTOMER_VOICE[@]}") ;;
    *) echo "script.tsv line $index: unknown role '$role'" >&2; exit 1 ;;
  esac
  espeak-ng "${voice[@]}" -w "$work/raw.wav" "$text"
  "${SOX[@]}" "$work/raw.wav" "${PCM[@]}" "$work/trimmed.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
  local got slot
  got=$(soxi -s "$work/trimmed.wav")
  slot=$(((end_ms - start_ms) * SAMPLES_PER_MS))
  if ((got > slot + TOLERANCE_MS * SAMPLES_PER_MS || got < slot - TOLERANCE_MS * SAMPLES_PER_MS)); then
    echo "script.tsv line $index: speech lasts $((got / SAMPLES_PER_MS)) ms," \
      "slot is $((end_ms - start_ms)) ms; set end_ms to $((start_ms + (got + SAMPLES_PER_MS - 1) / SAMPLES_PER_MS))" >&2
    exit 1
  fi
  # Fit to the exact slot (pad or cut the few rounding samples), then shift to the turn's start.
  local -a fit=(trim 0 "${slot}s")
  if ((got < slot)); then fit=(pad 0 "$((slot - got))s"); fi
  "${SOX[@]}" "$work/trimmed.wav" "$out" "${fit[@]}" pad "$((start_ms * SAMPLES_PER_MS))s"
}

# Mix the turns of one role onto a silent track of the call's full length.
build_channel() {
  local role=$1 total_ms=$2 out=$3
  local -a inputs=(-v 1 "$work/silence.wav")
  local file
  for file in "$work"/turn-*-"$role".wav; do
    inputs+=(-v 1 "$file")
  done
  "${SOX[@]}" -m "${inputs[@]}" "${PCM[@]}" -c 1 "$out"
}

json_escape() {
  local s=${1//\\/\\\\}
  printf '%s' "${s//\"/\\\"}"
}

write_transcripts() {
  local json="$here/transcript.json" txt="$here/transcript.txt"
  local index=0 role start_ms end_ms text label sep=""
  printf '{\n  "external_id": "sample-transcript-001",\n  "transcript": [\n' >"$json"
  : >"$txt"
  while IFS=$'\t' read -r role start_ms end_ms text; do
    index=$((index + 1))
    printf '%s    {"speaker": "%s", "text": "%s", "start_ms": %d, "end_ms": %d}' \
      "$sep" "$role" "$(json_escape "$text")" "$start_ms" "$end_ms" >>"$json"
    sep=$',\n'
    label="$(tr '[:lower:]' '[:upper:]' <<<"${role:0:1}")${role:1}"
    printf '%s: %s\n' "$label" "$text" >>"$txt"
  done < <(tail -n +2 "$script")
  printf '\n  ]\n}\n' >>"$json"
}

main() {
  local index=0 last_end=0 role start_ms end_ms text
  while IFS=$'\t' read -r role start_ms end_ms text; do
    index=$((index + 1))
    synth_turn "$((index + 1))" "$role" "$start_ms" "$end_ms" "$text" \
      "$work/turn-$(printf '%02d' "$index")-$role.wav"
    if ((end_ms > last_end)); then last_end=$end_ms; fi
  done < <(tail -n +2 "$script")

  local total_ms=$((last_end + TAIL_MS))
  # The null input needs the rate too, or `trim` counts samples at sox's default 48 kHz.
  "${SOX[@]}" -r "$RATE" -c 1 -n "${PCM[@]}" -c 1 "$work/silence.wav" \
    trim 0 "$((total_ms * SAMPLES_PER_MS))s"
  build_channel agent "$total_ms" "$work/left.wav"
  build_channel customer "$total_ms" "$work/right.wav"
  "${SOX[@]}" -M "$work/left.wav" "$work/right.wav" "${PCM[@]}" -c 2 "$here/stereo.wav"
  # Sum both sides (the overlap would clip at 16 bits), then normalise to -1 dBFS.
  "${SOX[@]}" "$here/stereo.wav" "${PCM[@]}" -c 1 "$here/mono.wav" remix 1,2 gain -n -1
  write_transcripts
  echo "wrote stereo.wav mono.wav transcript.json transcript.txt ($total_ms ms, $index turns)"
}

main "$@"

#!/usr/bin/env bash
# Greedy replies of a GGUF model on its quantised weights (decode steps with 8-bit activations)
# against the same model converted to Float32, with `tally generate`, on the reference
# fixtures' two chat prompts and six more; prints each pair and the count of identical replies.
#
# Usage: scripts/quantised_agreement.sh [TALLY] [MODEL]
#   TALLY  the tally binary (default .build/release/tally)
#   MODEL  a GGUF file or model name (default smollm2-135m-instruct)
#   MAX_TOKENS (default 48)
set -euo pipefail
cd "$(dirname "$0")/.."
TALLY="${1:-.build/release/tally}"
MODEL="${2:-smollm2-135m-instruct}"
MAX_TOKENS="${MAX_TOKENS:-48}"

# system|user: the first two are the cases of ../shared/reference/smollm2-135m-instruct.
prompts=(
    "|What is the capital of France?"
    "You classify movie reviews.|Review: a gorgeous, witty, seductive movie.
Is this review positive or negative? Answer with one word."
    "|Give me one tip for sleeping better."
    "|Write a haiku about the sea."
    "|Explain in two sentences what a learning curve is."
    "You classify movie reviews.|Review: the plot is thin and the jokes fall flat.
Is this review positive or negative? Answer with one word."
    "|List three primary colours."
    "|What is 17 times 23? Think step by step."
)
same=0
for entry in "${prompts[@]}"; do
    system="${entry%%|*}" user="${entry#*|}"
    args=(generate --model "$MODEL" --prompt "$user" --max-tokens "$MAX_TOKENS")
    [[ -n "$system" ]] && args+=(--system "$system")
    q="$("$TALLY" "${args[@]}" --weights quantised 2>/dev/null)"
    f="$("$TALLY" "${args[@]}" --weights f32 2>/dev/null)"
    if [[ "$q" == "$f" ]]; then same=$((same + 1)); mark="same"; else mark="DIFFERENT"; fi
    printf -- '--- %s: %s\n  quantised: %s\n  f32:       %s\n' "$mark" "$user" "${q//$'\n'/ }" "${f//$'\n'/ }"
done
echo "identical greedy replies: $same / ${#prompts[@]} (max $MAX_TOKENS tokens)"

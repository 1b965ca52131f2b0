# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared by the pipelines/*.sh examples: sourced, not run.

# A file:// URI for a path, percent-encoded byte by byte; a URI is kept.
uri_for() {
  if [[ $1 == *://* ]]; then
    echo "$1"
    return
  fi
  local LC_ALL=C path out= c i
  path=$(realpath "$1")
  for ((i = 0; i < ${#path}; i++)); do
    c=${path:i:1}
    case $c in
      [a-zA-Z0-9/._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c"; out+=$c ;;
    esac
  done
  echo "file://$out"
}

# Appends model= and vocab= to the array `element` (a clipclassify and its
# properties) from CLIP_MODEL and CLIP_VOCAB; unset keeps the defaults.
add_model_properties() {
  [[ -n ${CLIP_MODEL:-} ]] && element+=("model=$CLIP_MODEL")
  [[ -n ${CLIP_VOCAB:-} ]] && element+=("vocab=$CLIP_VOCAB")
  return 0
}

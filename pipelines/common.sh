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

# A gst-launch property value, double-quoted.
launch_quote() {
  local value=${1//\\/\\\\}
  printf '"%s"' "${value//\"/\\\"}"
}

# Sets `branch`: what tag-streams runs on each stream's frames, in
# gst-launch syntax: clipclassify live (as in tag-camera.sh, the streams'
# frames in shared batches of up to 8) then
# clippublish (as in publish-camera.sh) to CLIP_MQTT_ADDRESS, or with
# CLIP_PUBLISH_FILE to that file ({name}: the stream's name); every result
# too when CLIP_PUBLISH_RESULTS=1.
streams_branch() {
  local element=(clipclassify shared-batches=true batch-size=8
    "labels=$(launch_quote "${CLIP_LABELS:-a person,a cat,a dog,an empty room}")"
    interval=3 smoothing=8)
  [[ -n ${CLIP_MODEL:-} ]] && element+=("model=$(launch_quote "$CLIP_MODEL")")
  [[ -n ${CLIP_VOCAB:-} ]] && element+=("vocab=$(launch_quote "$CLIP_VOCAB")")
  local publish=(clippublish "topic=$(launch_quote "${CLIP_TOPIC:-gst-clip/{name\}}")"
    min-segment=1000000000 min-score=0.5 cooldown=30000000000)
  if [[ -n ${CLIP_PUBLISH_FILE:-} ]]; then
    publish+=(method=file "location=$(launch_quote "$CLIP_PUBLISH_FILE")")
  else
    publish+=("address=$(launch_quote "${CLIP_MQTT_ADDRESS:-localhost:1883}")")
  fi
  [[ ${CLIP_PUBLISH_RESULTS:-0} == 1 ]] && publish+=(publish-results=true)
  branch="videoconvert ! ${element[*]} ! ${publish[*]} ! fakesink sync=false"
}

# Runs tag-streams (pipelines/tag-streams.c): $CLIP_TAG_STREAMS, else the
# one built in build/, else the one in PATH; with the branch, the retry
# delay and stall timeout from CLIP_RETRY_DELAY and CLIP_STALL_TIMEOUT, and
# the streams given.
exec_tag_streams() {
  local program=${CLIP_TAG_STREAMS:-$(dirname "${BASH_SOURCE[0]}")/../build/pipelines/tag-streams}
  [[ -x $program ]] || program=tag-streams
  streams_branch
  exec "$program" --branch "$branch" --retry-delay "${CLIP_RETRY_DELAY:-5}" \
    --stall-timeout "${CLIP_STALL_TIMEOUT:-10}" "$@"
}

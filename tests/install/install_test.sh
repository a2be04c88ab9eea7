#!/usr/bin/env bash
# Installs the build into a temporary prefix and uses it the way a product does (see CMakeLists.txt).
#   install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
# Environment: MOE_LIBDIR (CMAKE_INSTALL_LIBDIR); MOE_PYTHON, MOE_PYTHON_DIR, MOE_JAVA, MOE_JAVAC,
# MOE_MCS, MOE_MONO for the bindings that were built (empty: not built, not tested).
set -euo pipefail
build=$1 source=$2 work=$3
prefix=$work/prefix
libdir=$prefix/$MOE_LIBDIR
model=$source/tests/reference/mixtral
# Nothing may come from the build tree: no search paths pointing there.
unset LD_LIBRARY_PATH MOE_PLUGIN_PATH PYTHONPATH CLASSPATH MONO_PATH

fail() { echo "install test: FAILED: $*" >&2; exit 1; }

# Fails unless PROGRAM loads the installed libmoe.
uses_installed_libmoe() {
  local resolved
  resolved=$(ldd "$1" | awk '$1 == "libmoe.so.0" { print $3 }')
  [ -n "$resolved" ] && [ "$(realpath "$resolved")" = "$(realpath "$libdir/libmoe.so.0")" ] ||
    fail "$1 does not load $libdir/libmoe.so.0: $(ldd "$1")"
}
step() { echo "== $*"; }

rm -rf "$work"
mkdir -p "$work"

step "cmake --install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
for f in include/moe/moe.h include/moe/moe.hpp include/moe/moe_plugin.h include/moe/moe_common.h \
         "$MOE_LIBDIR/libmoe.so" "$MOE_LIBDIR/cmake/MoeSdk/MoeSdkConfig.cmake" \
         "$MOE_LIBDIR/cmake/MoeSdk/MoeSdkConfigVersion.cmake" "$MOE_LIBDIR/pkgconfig/moe.pc" \
         "$MOE_LIBDIR/moe/plugins/libmoe_backend_cpu.so"; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done

step "third-party plugin, built against the installed plugin headers only"
cmake -S "$source/examples/plugin" -B "$work/plugin" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/plugin.log"
cmake --build "$work/plugin" >>"$work/plugin.log"
plugin_so=$work/plugin/libmoe_modality_bytes.so
if readelf -d "$plugin_so" | grep -q 'libmoe\.so'; then fail "the plugin links libmoe"; fi
exported=$(nm -D --defined-only "$plugin_so" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$exported" = "moe_plugin_entry " ] || fail "the plugin exports '$exported', not just moe_plugin_entry"
mkdir -p "$work/plugins"
cp "$plugin_so" "$work/plugins/"

# The consumer's output: the installed cpu backend and the example plugin loaded, then 8 tokens.
check_consumer() {
  local out=$1
  grep -q "^plugin cpu loaded $libdir/moe/plugins/libmoe_backend_cpu.so" "$out" ||
    fail "the installed cpu backend was not the one loaded: $(cat "$out")"
  grep -q "^plugin bytes loaded $work/plugins/libmoe_modality_bytes.so" "$out" ||
    fail "the example plugin was not loaded: $(cat "$out")"
  grep -Eq "^generated 8 tokens on cpu:( [0-9]+){8}$" "$out" || fail "no generation: $(cat "$out")"
}

step "consumer with find_package(MoeSdk)"
cmake -S "$source/examples/consumer" -B "$work/consumer-cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer-cmake.log"
cmake --build "$work/consumer-cmake" >>"$work/consumer-cmake.log"
uses_installed_libmoe "$work/consumer-cmake/consumer"
"$work/consumer-cmake/consumer" "$model" "$work/plugins" >"$work/consumer-cmake.out"
check_consumer "$work/consumer-cmake.out"

step "consumer with pkg-config"
mkdir -p "$work/consumer-pc"
PKG_CONFIG_PATH="$libdir/pkgconfig" make -s -C "$work/consumer-pc" -f "$source/examples/consumer/Makefile" \
  >"$work/consumer-pc.log"
uses_installed_libmoe "$work/consumer-pc/consumer"
"$work/consumer-pc/consumer" "$model" "$work/plugins" >"$work/consumer-pc.out"
check_consumer "$work/consumer-pc.out"
cmp -s <(tail -1 "$work/consumer-cmake.out") <(tail -1 "$work/consumer-pc.out") ||
  fail "the two consumers generated different tokens"

step "the installed moe tool lists the plugin"
MOE_PLUGIN_PATH="$work/plugins" "$prefix/bin/moe" plugins >"$work/moe-plugins.out" 2>&1 ||
  fail "moe plugins: $(cat "$work/moe-plugins.out")"
grep -q "libmoe_modality_bytes.so" "$work/moe-plugins.out" || fail "moe plugins: $(cat "$work/moe-plugins.out")"

expected=$(tail -1 "$work/consumer-cmake.out" | sed 's/^generated 8 tokens on cpu: //')

if [ -n "${MOE_PYTHON:-}" ]; then
  step "python: import moesdk from the prefix"
  PYTHONPATH="$prefix/$MOE_PYTHON_DIR" "$MOE_PYTHON" - "$model" "$prefix" "$expected" <<'PY'
import sys
import moesdk

model_dir, prefix, expected = sys.argv[1:]
assert moesdk.__file__.startswith(prefix), f"moesdk came from {moesdk.__file__}"
with moesdk.Context() as ctx, moesdk.Model(ctx, model_dir) as model:
    ids = model.generate([1, 2, 3], max_new_tokens=8)
    with moesdk.Trainer(model, lora_rank=2) as trainer:  # the trainer binding is installed too
        assert trainer.step([[1, 2, 3, 4]]).step == 1
assert " ".join(map(str, ids)) == expected, (ids, expected)
PY
fi

if [ -n "${MOE_JAVA:-}" ]; then
  step "java: the installed jar and JNI library"
  "$MOE_JAVAC" -encoding UTF-8 -cp "$libdir/moe/java/moesdk.jar" -d "$work/java" "$source/examples/java/Generate.java"
  "$MOE_JAVA" -cp "$libdir/moe/java/moesdk.jar:$work/java" -Djava.library.path="$libdir/moe/java" Generate "$model" \
    >"$work/java.out"
  grep -q "generated 16 tokens" "$work/java.out" || fail "java: $(cat "$work/java.out")"
fi

if [ -n "${MOE_MCS:-}" ]; then
  step "c#: the installed assembly and native library"
  "$MOE_MCS" -nologo -r:"$libdir/moe/csharp/MoeSdk.dll" -out:"$work/Generate.exe" "$source/examples/csharp/Generate.cs"
  MONO_PATH="$libdir/moe/csharp" "$MOE_MONO" "$work/Generate.exe" "$model" >"$work/csharp.out"
  grep -q "generated 16 tokens" "$work/csharp.out" || fail "c#: $(cat "$work/csharp.out")"
fi

echo "install test: passed"

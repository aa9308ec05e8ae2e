#!/bin/sh
# Refresh the charting library the dashboard ships as a static file (no build step at install
# time): `npm pack` the pinned Chart.js release from the npm registry (npm checks the tarball
# against the registry's integrity hash), keep its prebuilt UMD bundle and its licence, and
# record version and checksums in chart.js.lock (beside this script), which
# stat_pipeline_tests/test_dashboard.py checks against the shipped file.
#
#   stat_pipeline/serving/dashboard/refresh_chartjs.sh          # the version in chart.js.lock
#   stat_pipeline/serving/dashboard/refresh_chartjs.sh 4.6.2    # move the pin to another 4.x
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vendor="$here/static/vendor"
version=${1:-$(sed -n 's/^version=//p' "$here/chart.js.lock")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@$version" >/dev/null)
tar -xzf "$work/chart.js-$version.tgz" -C "$work" package/dist/chart.umd.min.js package/LICENSE.md
cp "$work/package/dist/chart.umd.min.js" "$vendor/chart.umd.min.js"
cp "$work/package/LICENSE.md" "$vendor/chart.js.LICENSE.md"
integrity=$(cd "$work" && npm view "chart.js@$version" dist.integrity)
{
  echo "# written by refresh_chartjs.sh: the Chart.js release shipped in static/vendor/"
  echo "version=$version"
  echo "npm_integrity=$integrity"
  echo "sha256=$(sha256sum "$vendor/chart.umd.min.js" | cut -d' ' -f1)"
} > "$here/chart.js.lock"
echo "chart.js $version -> $vendor/chart.umd.min.js"

# Shared by the scripts that run a Java server from jars Maven resolves (ops/kafka/broker.sh,
# ops/s3/s3proxy.sh). Source it after setting HERE (the script's directory, holding its
# pom.xml), NAME (for messages) and PRODUCT (the pom's <PRODUCT.version> property). It sets
# REPO, POM, VERSION, HOME_DIR (the cache of that version), LIBS and HOST, and defines log,
# die, fetch and parse_args.

REPO=$(cd "$HERE/../.." && pwd)
POM=$HERE/pom.xml
VERSION=$(sed -n "s:.*<$PRODUCT.version>\(.*\)</$PRODUCT.version>.*:\1:p" "$POM")
HOME_DIR=${SLAMON_CACHE:-$HOME/.cache/slamon}/$PRODUCT-$VERSION
LIBS=$HOME_DIR/libs
HOST=127.0.0.1

log() { echo "$NAME: $*" >&2; }
die() { log "error: $*"; exit 1; }

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

# The marker holds the pom's hash and is written last, so an interrupted or outdated fetch is redone.
fetched() { [[ -f $HOME_DIR/.complete && $(cat "$HOME_DIR/.complete") == "$(pom_hash)" ]]; }

# The jars of $POM into $LIBS, once per pom version.
fetch() {
  fetched && return 0
  command -v mvn >/dev/null || die "mvn (Apache Maven) is needed to fetch the jars of $POM"
  mkdir -p "$HOME_DIR"
  # Parallel test sessions may fetch at the same time: one resolves, the others wait for it.
  exec 9>"$HOME_DIR/.lock"
  flock 9
  if ! fetched; then
    log "fetching the jars of $POM into $LIBS"
    local staging
    staging=$(mktemp -d "$HOME_DIR/libs.XXXXXX")
    chmod 755 "$staging"
    if ! mvn -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$staging" >"$HOME_DIR/fetch.log" 2>&1; then
      rm -rf "$staging"
      tail -n 40 "$HOME_DIR/fetch.log" >&2
      die "mvn could not resolve $POM (network? proxy in ~/.m2/settings.xml?); log: $HOME_DIR/fetch.log"
    fi
    rm -rf "$LIBS" "$HOME_DIR/.complete"
    mv "$staging" "$LIBS"
    pom_hash >"$HOME_DIR/.complete"
  fi
  exec 9>&-
}

# PORT and DIR (absolute, created) from `[--port P] [--dir D]`; DIR defaults to $1.
parse_args() {
  PORT="" DIR=$1
  shift
  while (($#)); do
    case $1 in
      --port) PORT=${2:?--port needs a value}; shift 2 ;;
      --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
      *) usage ;;
    esac
  done
  [[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die "--port must be a number, not '$PORT'"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
}

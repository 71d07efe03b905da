# SPDX-License-Identifier: GPL-2.0-only
# bash completion for dupcache. Kept in step with `dupcache SUBCOMMAND --help` by
# tests/integration/completion_test.cpp.

_dupcache() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="report top trace evict merge dedupe daemon doctor"
  local sub="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      report | top | trace | evict | merge | dedupe | daemon | doctor)
        sub=${COMP_WORDS[i]}
        break
        ;;
    esac
  done
  if [[ -z $sub ]]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return
  fi

  local opts takes_paths=1 args=""
  case $sub in
    report)
      opts="-h --help --json --by --container --cgroup --from-daemon --socket --metadata-root --top --bytes -j --jobs --cross-mounts --all-extents --content --residency"
      args="--by --container --cgroup --socket --metadata-root --top -j --jobs --residency"
      ;;
    top)
      opts="-h --help -d --delay -n --iterations -b --batch --json --view --sort --container --cgroup --no-containers --metadata-root --from-daemon --socket --top --bytes --no-bpf --ring-buffer --cross-mounts --content --content-interval"
      args="-d --delay -n --iterations --view --sort --container --cgroup --metadata-root --socket --top --ring-buffer --content-interval"
      ;;
    trace)
      opts="-h --help --all -n --count --duration --ring-buffer --no-sharing --per-folio"
      args="-n --count --duration --ring-buffer"
      ;;
    evict)
      opts="-h --help -n --dry-run --json --bytes --container --cgroup --keep-container --max-bytes --cross-mounts --no-pageout --metadata-root"
      args="--container --cgroup --keep-container --max-bytes --metadata-root"
      ;;
    merge)
      opts="-h --help -p --pid --all --no-module --timeout -n --dry-run --json --bytes"
      args="-p --pid --timeout"
      ;;
    dedupe)
      opts="-h --help -n --dry-run --rate --json --bytes"
      args="--rate"
      ;;
    daemon)
      opts="-h --help -c --config -n --dry-run --check-config"
      args="-c --config"
      takes_paths=0
      ;;
    doctor)
      opts="-h --help --json"
      takes_paths=0
      ;;
  esac

  case $prev in
    --by)
      # Comma-separated: complete the item after the last comma.
      local done_part="" item=$cur
      if [[ $cur == *,* ]]; then
        done_part=${cur%,*},
        item=${cur##*,}
      fi
      COMPREPLY=($(compgen -P "$done_part" -W "file group fs container" -- "$item"))
      compopt -o nospace 2>/dev/null
      return
      ;;
    --view)
      COMPREPLY=($(compgen -W "files groups fs containers" -- "$cur"))
      return
      ;;
    --sort)
      COMPREPLY=($(compgen -W "wasted shared cached path copies per-copy files type fs runtime container cgroup" -- "$cur"))
      return
      ;;
    --residency)
      COMPREPLY=($(compgen -W "auto cachestat mincore" -- "$cur"))
      return
      ;;
    --metadata-root)
      COMPREPLY=($(compgen -d -- "$cur"))
      return
      ;;
    --socket | -c | --config)
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
  esac
  local a
  for a in $args; do
    [[ $prev == "$a" ]] && return  # a value nobody can guess: numbers, ids
  done

  if [[ $cur == -* || $takes_paths == 0 ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _dupcache dupcache

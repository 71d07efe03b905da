# SPDX-License-Identifier: GPL-2.0-only
# fish completion for dupcache. Kept in step with `dupcache SUBCOMMAND --help` by
# tests/integration/completion_test.cpp.

set -l commands report top trace evict merge dedupe daemon doctor
complete -c dupcache -f
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a report -d 'One-shot report of duplicated page cache'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a top -d 'Live view of wasted page cache'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a trace -d 'Decoded page-cache and sharing events'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a evict -d 'Evict duplicate cached copies once'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a merge -d 'Merge mapped duplicates onto one copy'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a dedupe -d 'Turn identical file contents into shared extents'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a daemon -d 'Policy daemon'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -a doctor -d 'What this kernel and host support'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -s h -l help -d 'Print help'
complete -c dupcache -n "not __fish_seen_subcommand_from $commands" -l version -d 'Print the version and BPF ABI version'

# Paths where paths go.
complete -c dupcache -n "__fish_seen_subcommand_from report top trace evict merge dedupe" -F

# report
set -l r "__fish_seen_subcommand_from report"
complete -c dupcache -n $r -s h -l help -d 'Print help'
complete -c dupcache -n $r -l json -d 'Print the JSON document'
complete -c dupcache -n $r -l by -x -a 'file group fs container' -d 'Tables to print (comma separated)'
complete -c dupcache -n $r -l container -x -d 'Only this container'
complete -c dupcache -n $r -l cgroup -x -d 'Only containers in this cgroup'
complete -c dupcache -n $r -l from-daemon -d "Ask the running daemon"
complete -c dupcache -n $r -l socket -r -d "The daemon's control socket"
complete -c dupcache -n $r -l metadata-root -x -a '(__fish_complete_directories)' -d 'Runtime metadata root'
complete -c dupcache -n $r -l top -x -d 'Rows per table'
complete -c dupcache -n $r -l bytes -d 'Sizes in bytes'
complete -c dupcache -n $r -s j -l jobs -x -d 'Walker threads'
complete -c dupcache -n $r -l cross-mounts -d 'Descend into other mounts'
complete -c dupcache -n $r -l all-extents -d 'Index every placed extent'
complete -c dupcache -n $r -l content -d 'Also duplicates by content'
complete -c dupcache -n $r -l residency -x -a 'auto cachestat mincore' -d 'How residency is read'

# top
set -l t "__fish_seen_subcommand_from top"
complete -c dupcache -n $t -s h -l help -d 'Print help'
complete -c dupcache -n $t -s d -l delay -x -d 'Seconds between updates'
complete -c dupcache -n $t -s n -l iterations -x -d 'Stop after N updates'
complete -c dupcache -n $t -s b -l batch -d 'Plain text per interval'
complete -c dupcache -n $t -l json -d 'One JSON document per interval'
complete -c dupcache -n $t -l view -x -a 'files groups fs containers' -d 'Initial view'
complete -c dupcache -n $t -l sort -x -a 'wasted shared cached path copies per-copy files type fs runtime container cgroup' -d 'Sort column'
complete -c dupcache -n $t -l container -x -d 'Only this container'
complete -c dupcache -n $t -l cgroup -x -d 'Only containers in this cgroup'
complete -c dupcache -n $t -l no-containers -d 'Do not attribute pages to containers'
complete -c dupcache -n $t -l metadata-root -x -a '(__fish_complete_directories)' -d 'Runtime metadata root'
complete -c dupcache -n $t -l from-daemon -d "Show the running daemon's index"
complete -c dupcache -n $t -l socket -r -d "The daemon's control socket"
complete -c dupcache -n $t -l top -x -d 'Rows per interval'
complete -c dupcache -n $t -l bytes -d 'Sizes in bytes'
complete -c dupcache -n $t -l no-bpf -d 'Do not trace; rescan'
complete -c dupcache -n $t -l ring-buffer -x -d 'BPF ring buffer bytes'
complete -c dupcache -n $t -l cross-mounts -d 'Descend into other mounts'
complete -c dupcache -n $t -l content -d 'Also duplicates by content'
complete -c dupcache -n $t -l content-interval -x -d 'Seconds between content passes'

# trace
set -l tr "__fish_seen_subcommand_from trace"
complete -c dupcache -n $tr -s h -l help -d 'Print help'
complete -c dupcache -n $tr -l all -d 'Every filesystem'
complete -c dupcache -n $tr -s n -l count -x -d 'Stop after N events'
complete -c dupcache -n $tr -l duration -x -d 'Stop after SECONDS'
complete -c dupcache -n $tr -l ring-buffer -x -d 'Ring buffer bytes'
complete -c dupcache -n $tr -l no-sharing -d 'Only page-cache and dirty events'
complete -c dupcache -n $tr -l per-folio -d 'One event per folio'

# evict
set -l e "__fish_seen_subcommand_from evict"
complete -c dupcache -n $e -s h -l help -d 'Print help'
complete -c dupcache -n $e -s n -l dry-run -d 'Plan and print, act on nothing'
complete -c dupcache -n $e -l json -d 'Print one JSON document'
complete -c dupcache -n $e -l bytes -d 'Sizes in bytes'
complete -c dupcache -n $e -l container -x -d 'Only copies charged to this container'
complete -c dupcache -n $e -l cgroup -x -d 'Only copies charged to this cgroup'
complete -c dupcache -n $e -l keep-container -x -d "Keep this container's copies"
complete -c dupcache -n $e -l max-bytes -x -d 'Evict at most this many bytes'
complete -c dupcache -n $e -l cross-mounts -d 'Descend into other mounts'
complete -c dupcache -n $e -l no-pageout -d 'Leave mapped duplicates alone'
complete -c dupcache -n $e -l metadata-root -x -a '(__fish_complete_directories)' -d 'Runtime metadata root'

# merge
set -l mg "__fish_seen_subcommand_from merge"
complete -c dupcache -n $mg -s h -l help -d 'Print help'
complete -c dupcache -n $mg -s p -l pid -x -a '(__fish_complete_pids)' -d 'A process whose mapped duplicates to merge'
complete -c dupcache -n $mg -l all -d 'Every process'
complete -c dupcache -n $mg -l no-module -d 'Page out and evict, even with the module loaded'
complete -c dupcache -n $mg -l timeout -x -d 'How long a process may take to merge, in ms'
complete -c dupcache -n $mg -s n -l dry-run -d 'Plan and print, act on nothing'
complete -c dupcache -n $mg -l json -d 'Print one JSON document'
complete -c dupcache -n $mg -l bytes -d 'Sizes in bytes'

# dedupe
set -l dd "__fish_seen_subcommand_from dedupe"
complete -c dupcache -n $dd -s h -l help -d 'Print help'
complete -c dupcache -n $dd -s n -l dry-run -d 'Hash and print what would be shared, share nothing'
complete -c dupcache -n $dd -l rate -x -d 'Read at most this many bytes per second (e.g. 64M)'
complete -c dupcache -n $dd -l json -d 'Print one JSON document'
complete -c dupcache -n $dd -l bytes -d 'Sizes in bytes'

# daemon
set -l dm "__fish_seen_subcommand_from daemon"
complete -c dupcache -n $dm -s h -l help -d 'Print help'
complete -c dupcache -n $dm -s c -l config -r -F -d 'Configuration file'
complete -c dupcache -n $dm -s n -l dry-run -d 'Decide and log, act on nothing'
complete -c dupcache -n $dm -l check-config -d 'Check the configuration and exit'

# doctor
complete -c dupcache -n "__fish_seen_subcommand_from doctor" -s h -l help -d 'Print help'
complete -c dupcache -n "__fish_seen_subcommand_from doctor" -l json -d 'Print the checks as JSON'

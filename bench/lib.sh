#  lib.sh — what the benchmark scripts share (sourced, not run).

#  A TCP port on 127.0.0.1 that nothing listens on (and not given out yet).
used_ports=" "
free_port () {
    local port
    while true; do
        port=$(( 20000 + RANDOM % 40000 ))
        [[ "$used_ports" == *" $port "* ]] && continue
        if [[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]]; then
            used_ports+="$port "
            echo "$port"
            return
        fi
    done
}

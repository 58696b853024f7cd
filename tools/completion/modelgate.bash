# bash completion for modelgate: commands, options, and model names from the policy
# (asked of `modelgate policy list`, so the policy's own checks apply; nothing is parsed here).
# Installed as share/bash-completion/completions/modelgate; needs nothing but bash.

_modelgate_models()
{
    local policy="" i
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        case ${COMP_WORDS[i]} in
            -p | --policy) policy=${COMP_WORDS[i + 1]} ;;
            --policy=*) policy=${COMP_WORDS[i]#--policy=} ;;
        esac
    done
    local -a args=(policy list)
    [[ -n $policy ]] && args+=(-p "$policy")
    "${COMP_WORDS[0]}" "${args[@]}" 2>/dev/null | while IFS=$'\t' read -r name _; do
        printf '%s\n' "$name"
    done
}

_modelgate()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=""
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="hash keygen sign verify inspect dump fetch policy help"
    local common="-p --policy --policy-key --json -q --quiet -h --help"
    COMPREPLY=()

    if ((COMP_CWORD == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi
    local cmd=${COMP_WORDS[1]} sub=""
    [[ $cmd == policy && ${#COMP_WORDS[@]} -gt 2 ]] && sub=${COMP_WORDS[2]}

    # Options that take a file or a fixed word.
    case $prev in
        -p | --policy | --policy-key | -k | --key | --sums | --ca-file | -o | --output)
            COMPREPLY=($(compgen -f -- "$cur"))
            return ;;
        -a | --algorithm)
            COMPREPLY=($(compgen -W "sha256 sha512" -- "$cur"))
            return ;;
        -t | --type)
            COMPREPLY=($(compgen -W "ed25519 ecdsa-p256 rsa-3072" -- "$cur"))
            return ;;
        -n | --name | -V | --version | --expires | --ignore)
            return ;;
    esac

    local opts="" operands=""
    case $cmd in
        hash) opts="-a --algorithm -c --check --tag --json -q --quiet -h --help"; operands=files ;;
        keygen) opts="-t --type -o --output --json -q --quiet -h --help" ;;
        sign) opts="-k --key -n --name -V --version --expires -a --algorithm --add --json -q --quiet -h --help"
              operands=dirs ;;
        verify | inspect | fetch) opts=$common; operands=models ;;
        dump) opts="-p --policy --policy-key -o --output -q --quiet -h --help"; operands=models ;;
        help) ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
              ((COMP_CWORD == 3)) && [[ ${COMP_WORDS[2]} == policy ]] &&
                  COMPREPLY=($(compgen -W "check list pin" -- "$cur"))
              return ;;
        policy)
            if ((COMP_CWORD == 2)); then
                COMPREPLY=($(compgen -W "check list pin" -- "$cur"))
                return
            fi
            case $sub in
                check | list) opts=$common ;;
                pin) opts="-n --name -a --algorithm --ignore --sums --ca-file --json -q --quiet -h --help"
                     operands=files ;;
            esac ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case $operands in
        files) COMPREPLY=($(compgen -f -- "$cur")) ;;
        dirs) COMPREPLY=($(compgen -d -- "$cur")) ;;
        models)
            # dump: the first operand is the model; tensor names are not listed (that would
            # need a verified load on every <TAB>).
            COMPREPLY=($(compgen -W "$(_modelgate_models)" -- "$cur")) ;;
    esac
}

complete -o default -F _modelgate modelgate

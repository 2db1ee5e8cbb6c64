#!/usr/bin/env zsh
# What zsh's completion system offers for a command line, one candidate a line, sorted: an
# interactive zsh under a pseudo-terminal (zsh/zpty) runs compinit with DIR first in $fpath (so
# DIR/_vrmctl is autoloaded as the packages install it), the line is typed and TAB pressed, and
# every candidate the completion functions hand to compadd is printed instead of inserted.
# Nothing is executed: Enter is unbound.
#
# Usage: zsh_complete.zsh DIR 'vrmctl submit --obj'   (exit 2 if zsh did not get that far)
emulate -L zsh
zmodload zsh/zpty || { print -u2 "no zsh/zpty"; exit 2 }
dir=$1 line=$2
init=$(mktemp)
trap 'rm -f $init; zpty -d c 2>/dev/null' EXIT
cat >$init <<EOF
PROMPT='' RPROMPT='' PS2=''
fpath=(${(q)dir} \$fpath)
autoload -U compinit && compinit -u -D
bindkey '^M' undefined-key
bindkey '^J' undefined-key
bindkey '^I' complete-word
zstyle ':completion:*' list-grouped false
zstyle ':completion:*' insert-tab false
# Markers around the candidates; the shell leaves once completion is done.
vrm_begin() { print -r -- '<begin>' }
vrm_end() { print -r -- '<end>'; exit }
compprefuncs=(vrm_begin)
comppostfuncs=(vrm_end)
compadd() {
  # Calls that only query (-O, -A, -D) go through untouched.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
    builtin compadd "\$@"
    return
  fi
  local -a hits
  builtin compadd -A hits "\$@"
  local h
  for h in \$hits; do print -r -- "<hit>\$h"; done
  builtin compadd "\$@"
}
print -r -- '<ready>'
EOF
zpty c zsh -f -i
zpty -w c "source ${(q)init}"
# Once the init is done (read up to its marker; the caller bounds the time), type the line and
# press TAB.
local out
zpty -r c out '*<ready>*' || { print -u2 "zsh did not start"; exit 2 }
zpty -w -n c "$line"$'\t'
local all='' chunk
while zpty -r c chunk; do all+=$chunk; done
[[ $all == *'<end>'* ]] || { print -u2 "no completion ran: $all"; exit 2 }
local -a hits
for l in ${(f)all}; do
  l=${l%$'\r'}
  [[ $l == '<hit>'* ]] && hits+=(${l#'<hit>'})
done
print -rl -- ${(ou)hits}

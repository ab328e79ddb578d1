#!/bin/bash
# Runs inside the booted Debian 12 container (qsent-systemtest.service, as root, under the real
# systemd): installs the .deb with apt and checks the socket-activated daemon. One line per check
# in DIR/results.txt ("ok NAME: detail" / "FAIL NAME: detail"), figures as "figure NAME: value",
# then DIR/PASS or DIR/FAIL. The exit status ends the boot (SuccessAction/FailureAction=exit).
# No Swift, no procps here: only the package, bash, coreutils, util-linux, socat and systemd.
set -u
DIR=${1:-/srv/qsent-test}
RES=$DIR/results.txt
SOCK=/run/qsentd/qsentd.sock
failures=0
: > "$RES"

ok() { echo "ok $1: $2" | tee -a "$RES"; }
fail() { echo "FAIL $1: $2" | tee -a "$RES"; failures=$((failures + 1)); }
figure() { echo "figure $1: $2" | tee -a "$RES"; }
check() {  # NAME DETAIL COMMAND...: ok if COMMAND succeeds
    local name=$1 detail=$2; shift 2
    if "$@"; then ok "$name" "$detail"; else fail "$name" "$detail"; fi
}
prop() { systemctl show -P "$2" "$1"; }
mainpid() { prop qsentd.service MainPID; }
now_ns() { date +%s%N; }
wait_for() {  # SECONDS COMMAND...: poll every 0.1 s
    local end=$(( $(date +%s) + $1 )); shift
    until "$@"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.1; done
}
is_state() { [ "$(prop "$1" ActiveState)" = "$2" ]; }
finish() {
    journalctl -b --no-pager -o short-precise > "$DIR/journal.txt" 2>&1
    systemctl status --no-pager qsentd.socket qsentd.service > "$DIR/status.txt" 2>&1
    if [ "$failures" = 0 ]; then touch "$DIR/PASS"; exit 0; fi
    touch "$DIR/FAIL"; exit 1
}
# Answer files compared by compare.awk: discrete fields exactly, floats within 1e-5 (the daemon
# batches differently from the in-process engine; the differences seen are ~1e-6).
compare() { awk -v tol=1e-5 -f "$DIR/compare.awk" "$@"; }

echo "== booted: $(systemctl is-system-running 2>&1)"
wait_for 60 sh -c '! systemctl is-system-running 2>/dev/null | grep -q starting' || true

# --- install ------------------------------------------------------------------------------
[ ! -e /usr/bin/swift ] && ! ls /opt/swift* >/dev/null 2>&1 && ok no-swift "no Swift toolchain in the root" \
    || fail no-swift "a Swift toolchain is present in the root"
# No procps: ExecReload= must not need /bin/kill (the reload check below proves it works).
check no-procps "no /bin/kill, /usr/bin/kill or ps in the root" [ ! -e /bin/kill -a ! -e /usr/bin/kill -a ! -e /usr/bin/ps ]
if DEBIAN_FRONTEND=noninteractive apt-get install -y "$DIR/qsent.deb" > "$DIR/apt-install.log" 2>&1; then
    ok apt-install "apt-get install ./qsent_*.deb on a clean Debian 12 root"
else
    fail apt-install "apt-get install failed: $(tail -n 3 "$DIR/apt-install.log" | tr '\n' ' ')"; finish
fi
check runs-qsent "/usr/bin/qsent --version without Swift: $(qsent --version 2>&1)" qsent --version
for b in qsentd qsent-quantize; do
    check "runs-$b" "/usr/bin/$b --help runs without Swift" sh -c "/usr/bin/$b --help > /dev/null"
done
check group "group qsent exists (systemd-sysusers): $(getent group qsent)" getent group qsent
check socket-enabled "qsentd.socket enabled: $(systemctl is-enabled qsentd.socket)" systemctl -q is-enabled qsentd.socket
check socket-active "qsentd.socket active before any connection" systemctl -q is-active qsentd.socket
check service-inactive "qsentd.service inactive before the first connection: $(prop qsentd.service ActiveState)" \
    is_state qsentd.service inactive
perm=$(stat -c '%a %U %G' "$SOCK" 2>&1)
check socket-mode "socket $SOCK is $perm (want 660 root qsent)" [ "$perm" = "660 root qsent" ]
for f in /usr/share/man/man1/qsentd.1.gz /usr/share/bash-completion/completions/qsent \
         /usr/share/zsh/vendor-completions/_qsent /usr/share/fish/vendor_completions.d/qsent.fish \
         /usr/share/doc/qsent/copyright /usr/share/qsent/model.qsent /etc/default/qsentd; do
    check "file-$(basename "$f")" "$f installed" [ -s "$f" ]
done

# --- exposure (the installed unit, before the test's drop-ins) ------------------------------
sec=$(systemd-analyze security --no-pager qsentd.service 2>&1)
echo "$sec" > "$DIR/security.txt"
exposure=$(echo "$sec" | sed -n 's/.*Overall exposure level for qsentd.service: \([0-9.]*\).*/\1/p')
figure exposure "${exposure:-unparsed}"
check exposure "systemd-analyze security qsentd.service: ${exposure:-?} (want <= 1.0)" \
    awk -v x="${exposure:-99}" 'BEGIN { exit !(x <= 1.0) }'

# --- first connection: activation, READY, answers --------------------------------------------
t0=$(now_ns)
first=$(qsent classify --json "A wonderful, moving film." 2>&1)
t1=$(now_ns)
figure activation-latency-ms "$(( (t1 - t0) / 1000000 ))"
check first-answer "first connection answered: $first" sh -c "echo '$first' | grep -q '\"label\"'"
check activated "the first connection started qsentd.service" is_state qsentd.service active
status=$(prop qsentd.service StatusText)
check status-text "StatusText: $status" sh -c "echo \"\$1\" | grep -q '^serving '" _ "$status"
check ready "READY: Type=notify service reached active/running (SubState $(prop qsentd.service SubState))" \
    [ "$(prop qsentd.service SubState)" = running ]
pid=$(mainpid)
st=/proc/$pid/status
uid=$(awk '/^Uid:/ { print $2 }' "$st")
check dynamic-user "runs as dynamic uid $uid (61184..65519)" [ "$uid" -ge 61184 -a "$uid" -le 65519 ]
check no-caps "CapEff $(awk '/^CapEff:/ { print $2 }' "$st")" [ "$(awk '/^CapEff:/ { print $2 }' "$st")" = 0000000000000000 ]
check seccomp "Seccomp $(awk '/^Seccomp:/ { print $2 }' "$st") (2 = filter)" [ "$(awk '/^Seccomp:/ { print $2 }' "$st")" = 2 ]

qsent classify --jsonl "$DIR/texts.jsonl" --json > "$DIR/got-int8.jsonl" 2> "$DIR/got-int8.err"
cmpout=$(compare "$DIR/got-int8.jsonl" "$DIR/expected-int8.jsonl"); crc=$?
check answers "daemon answers under systemd vs in-process engine on the host: $cmpout" [ "$crc" = 0 ]
qsent classify --jsonl "$DIR/pipeline.jsonl" --json > /dev/null 2>&1
# (--volatile=overlay keeps the installed files in tmpfs, so the mapped model and binary count
# as RssShmem here; on a disk they are RssFile.)
figure rss-kb "$(awk '/^VmRSS:/ { print $2 }' "$st") (RssAnon $(awk '/^RssAnon:/ { print $2 }' "$st") kB, RssFile $(awk '/^RssFile:/ { print $2 }' "$st") kB, RssShmem $(awk '/^RssShmem:/ { print $2 }' "$st") kB) after $(( $(wc -l < "$DIR/pipeline.jsonl") + $(wc -l < "$DIR/texts.jsonl") + 1 )) texts"
figure memory-current "$(prop qsentd.service MemoryCurrent)"

# --- access: socket group ---------------------------------------------------------------------
useradd -M -N -s /bin/sh outsider 2>/dev/null
useradd -M -N -G qsent -s /bin/sh member 2>/dev/null
out=$(setpriv --reuid=outsider --regid=users --init-groups socat -u OPEN:/dev/null UNIX-CONNECT:$SOCK 2>&1)
check outsider-eacces "a user outside group qsent: $out" sh -c "echo \"\$1\" | grep -q 'Permission denied'" _ "$out"
out=$(setpriv --reuid=outsider --regid=users --init-groups qsent ping 2>&1); rc=$?
check outsider-client "qsent ping as outsider exits $rc (want 2): $out" [ "$rc" = 2 ]
out=$(setpriv --reuid=member --regid=users --init-groups qsent classify --json "Dreadful. I walked out." 2>&1)
check member-answers "a member of group qsent gets answers: $out" sh -c "echo \"\$1\" | grep -q '\"label\"'" _ "$out"

# --- reload with pipelined requests ---------------------------------------------------------
# The model path is a symlink named in /etc/default/qsentd; reload swaps what it points at.
mkdir -p /var/lib/qsent-test
ln -sfn /usr/share/qsent/model.qsent /var/lib/qsent-test/model
printf 'QSENT_MODEL=/var/lib/qsent-test/model\n' > /etc/default/qsentd
systemctl restart qsentd.service
wait_for 30 is_state qsentd.service active
if [ -f /srv/hf-model/config.json ]; then
    NEW=/srv/hf-model; want=fp32
else
    cp /usr/share/qsent/model.qsent /var/lib/qsent-test/copy.qsent; NEW=/var/lib/qsent-test/copy.qsent; want=int8
fi
pid=$(mainpid)
reloads0=$(qsent stats 2>/dev/null | sed -n 's/.*"reloads":\([0-9]*\).*/\1/p')
qsent classify --jsonl "$DIR/pipeline.jsonl" --json > "$DIR/got-pipeline.jsonl" 2> "$DIR/got-pipeline.err" &
client=$!
sleep 0.3
ln -sfn "$NEW" /var/lib/qsent-test/model
systemctl reload qsentd.service; rrc=$?
wait $client; crc=$?
check reload-cmd "systemctl reload exit $rrc" [ "$rrc" = 0 ]
n=$(wc -l < "$DIR/got-pipeline.jsonl"); n0=$(wc -l < "$DIR/pipeline.jsonl")
check reload-pipelined "pipelined client during reload: exit $crc, $n/$n0 answers, errors: $(head -c 200 "$DIR/got-pipeline.err")" \
    [ "$crc" = 0 -a "$n" = "$n0" ]
# Every answer is the old model's or the new model's answer to that request, in order.
mixed=$(compare "$DIR/got-pipeline.jsonl" "$DIR/expected-pipeline-int8.jsonl" "$DIR/expected-pipeline-$want.jsonl"); mrc=$?
check reload-answers "answers during reload (match = old model, match2 = new): $mixed" [ "$mrc" = 0 ]
wait_for 30 sh -c "qsent info --json 2>/dev/null | grep -q '\"precision\":\"$want\"'"
info=$(qsent info --json 2>&1)
reloads1=$(qsent stats 2>/dev/null | sed -n 's/.*"reloads":\([0-9]*\).*/\1/p')
check reload-swapped "after reload: same MainPID ($pid -> $(mainpid)), reloads ${reloads0:-?} -> ${reloads1:-?}, precision $want" \
    [ "$pid" = "$(mainpid)" -a "${reloads1:-0}" -gt "${reloads0:-0}" ]
if [ "$want" = fp32 ]; then
    qsent classify --jsonl "$DIR/texts.jsonl" --json > "$DIR/got-fp32.jsonl" 2>&1
    cmpout=$(compare "$DIR/got-fp32.jsonl" "$DIR/expected-fp32.jsonl"); crc=$?
    check reload-new-answers "answers after reload vs in-process FP32 engine on the host: $cmpout" [ "$crc" = 0 ]
fi

# --- journal priorities: a refused reload is an error, normal events are info --------------------
printf 'not a model\n' > /var/lib/qsent-test/broken.qsent
ln -sfn /var/lib/qsent-test/broken.qsent /var/lib/qsent-test/model
systemctl reload qsentd.service
wait_for 20 sh -c "journalctl -u qsentd.service -p err -o cat --no-pager | grep -q 'reload refused'"
errs=$(journalctl -u qsentd.service -p err -o cat --no-pager)
infos=$(journalctl -u qsentd.service -p info..info -o cat --no-pager)
check journal-err "refused reload logged at priority err: $(echo "$errs" | grep -m1 'reload refused' | head -c 160)" \
    sh -c "echo \"\$1\" | grep -q 'reload refused'" _ "$errs"
check journal-info "'ready' logged at priority info, not err" \
    sh -c "echo \"\$1\" | grep -q '^ready' && ! echo \"\$2\" | grep -q '^ready'" _ "$infos" "$errs"
check journal-prefix "no raw <N> prefixes in messages; identifier qsentd" \
    sh -c "! journalctl -u qsentd.service -o cat --no-pager | grep -q '^<[0-7]>' && journalctl -u qsentd.service -o verbose --no-pager | grep -q 'SYSLOG_IDENTIFIER=qsentd'"
check still-serving "still serving the previous model after the refused reload" \
    sh -c "qsent classify --json 'fine' | grep -q '\"label\"'"
ln -sfn /usr/share/qsent/model.qsent /var/lib/qsent-test/model
systemctl reload qsentd.service

# --- watchdog: a frozen daemon is killed and restarted -----------------------------------------
mkdir -p /etc/systemd/system/qsentd.service.d
printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=5s\n' > /etc/systemd/system/qsentd.service.d/test-watchdog.conf
systemctl daemon-reload
systemctl restart qsentd.service
wait_for 30 is_state qsentd.service active
pid=$(mainpid); restarts0=$(prop qsentd.service NRestarts)
kill -STOP "$pid"
t0=$(date +%s)
wait_for 40 sh -c "p=\$(systemctl show -P MainPID qsentd.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ] && [ \"\$(systemctl show -P ActiveState qsentd.service)\" = active ]"
wd=$(journalctl -u qsentd.service -o cat --no-pager | grep -m1 -i 'watchdog timeout')
check watchdog "SIGSTOPped pid $pid replaced by $(mainpid) after $(( $(date +%s) - t0 )) s, NRestarts $restarts0 -> $(prop qsentd.service NRestarts); journal: $wd" \
    [ "$(mainpid)" != "$pid" -a -n "$wd" ]
check watchdog-serves "answers after the watchdog restart" sh -c "qsent classify --json 'fine' | grep -q '\"label\"'"
rm -f /etc/systemd/system/qsentd.service.d/test-watchdog.conf
systemctl daemon-reload

# --- idle exit, then re-activation -------------------------------------------------------------
printf 'QSENT_MODEL=/var/lib/qsent-test/model\nQSENT_IDLE_EXIT=2\n' > /etc/default/qsentd
systemctl stop qsentd.service
qsent ping > /dev/null 2>&1
wait_for 20 is_state qsentd.service inactive
check idle-exit "idle daemon exited by itself: $(prop qsentd.service ActiveState), result $(prop qsentd.service Result)" \
    [ "$(prop qsentd.service ActiveState)" = inactive -a "$(prop qsentd.service Result)" = success ]
check idle-socket "socket still listening after idle exit" systemctl -q is-active qsentd.socket
t0=$(now_ns)
out=$(qsent classify --json "I would watch it again tomorrow." 2>&1)
t1=$(now_ns)
figure reactivation-latency-ms "$(( (t1 - t0) / 1000000 ))"
check reactivation "next connection re-activated it: $out" sh -c "echo \"\$1\" | grep -q '\"label\"'" _ "$out"
printf 'QSENT_MODEL=/var/lib/qsent-test/model\n' > /etc/default/qsentd
systemctl restart qsentd.service
wait_for 30 is_state qsentd.service active

# --- systemctl stop drains ------------------------------------------------------------------------
# A pipelined batch below one read (64 KiB) and below --max-pipeline (128), so the daemon has
# received all of it when the first answer appears; stop then must still answer every line.
head -n 100 "$DIR/pipeline.jsonl" > "$DIR/drain.jsonl"
n0=$(wc -l < "$DIR/drain.jsonl")
rm -f "$DIR/got-drain.jsonl"
socat -t 60 -T 60 UNIX-CONNECT:$SOCK - < "$DIR/drain.jsonl" > "$DIR/got-drain.jsonl" &
client=$!
wait_for 20 [ -s "$DIR/got-drain.jsonl" ]
early=$(wc -l < "$DIR/got-drain.jsonl")
systemctl stop qsentd.service; src=$?
wait $client
n=$(wc -l < "$DIR/got-drain.jsonl")
nerr=$(grep -c '"error"' "$DIR/got-drain.jsonl")
check drain "systemctl stop (exit $src) with $(( n0 - early )) of $n0 requests pending: $n answers, $nerr errors; result $(prop qsentd.service Result)" \
    [ "$n" = "$n0" -a "$nerr" = 0 -a "$(prop qsentd.service Result)" = success ]
check drain-journal "journal: $(journalctl -u qsentd.service -o cat --no-pager | grep '^stopped' | tail -n1 | head -c 120)" \
    sh -c "journalctl -u qsentd.service -o cat --no-pager | grep -q '^stopped'"
check after-stop "socket still active after stopping the service" systemctl -q is-active qsentd.socket

# --- upgrade path: reinstalling runs postinst configure with the old version ------------------
DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y "$DIR/qsent.deb" > "$DIR/apt-reinstall.log" 2>&1; rrc=$?
out=$(qsent classify --json "Superb acting, weak script." 2>&1)
check reinstall "apt-get install --reinstall (exit $rrc): socket $(systemctl is-active qsentd.socket), answers: $out" \
    sh -c "[ $rrc = 0 ] && systemctl -q is-active qsentd.socket && echo \"\$1\" | grep -q '\"label\"'" _ "$out"

# --- remove and purge ---------------------------------------------------------------------------
DEBIAN_FRONTEND=noninteractive apt-get remove -y qsent > "$DIR/apt-remove.log" 2>&1
check remove "apt-get remove: socket $(systemctl is-active qsentd.socket 2>&1), $SOCK $( [ -e $SOCK ] && echo present || echo gone), units $( [ -e /usr/lib/systemd/system/qsentd.socket ] && echo present || echo gone), no binaries" \
    sh -c "! systemctl -q is-active qsentd.socket && [ ! -e $SOCK ] && [ ! -e /usr/lib/systemd/system/qsentd.service ] && [ ! -e /usr/bin/qsentd ]"
DEBIAN_FRONTEND=noninteractive apt-get purge -y qsent > "$DIR/apt-purge.log" 2>&1
left=$( (ls /etc/systemd/system/sockets.target.wants/ 2>/dev/null; ls /var/lib/systemd/deb-systemd-helper-enabled/ /var/lib/systemd/deb-systemd-helper-masked/ 2>/dev/null; find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled -name 'qsentd*' 2>/dev/null) | grep qsentd)
[ ! -e /etc/default/qsentd ] || left="$left /etc/default/qsentd"
check purge "apt-get purge: dpkg status '$(dpkg-query -W -f '${db:Status-Status}' qsent 2>&1)', leftovers: ${left:-none}" \
    sh -c "! dpkg-query -W -f '\${db:Status-Status}' qsent 2>/dev/null | grep -q installed && [ -z \"\$1\" ]" _ "$left"

finish

# Alternating A/B: python3 ab3.py ROUNDS THREADS BIN_A BIN_B REGEXP...; medians per benchmark and B/A.
import subprocess, json, sys, statistics, collections
rounds=int(sys.argv[1]); threads=sys.argv[2]; A=sys.argv[3]; B=sys.argv[4]; pats=sys.argv[5:]
vals=collections.defaultdict(lambda: collections.defaultdict(list))
for r in range(rounds):
    for b in [A,B]:
        out=subprocess.run(['flock','/tmp/bench.lock',b,'-threads',threads,'-json','-time','2s']+pats,capture_output=True,text=True).stdout
        for l in out.splitlines():
            try: d=json.loads(l)
            except: continue
            vals[d['name']][b].append(d['value'])
for n,v in sorted(vals.items()):
    o,nw=statistics.median(v[A]),statistics.median(v[B])
    print(f"{n:34s} A {o:9.2f} B {nw:9.2f} B/A {nw/o:5.2f}  A={['%.1f'%x for x in v[A]]} B={['%.1f'%x for x in v[B]]}")

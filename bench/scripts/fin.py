# Round 8 (bench/README.md): the decode set at 1 thread and the prefill set at 1 and 2 threads, N times, from /tmp/eb-new; raw results in /tmp/fin.json.
import subprocess, json, sys
runs=[]
pats1=['^membw/read$','^peak/fma-f32$','^gpt2/decode-(f32|bf16|f16|q8)-ctx128$','^smollm2-135m/decode-(f32|bf16|q8)-ctx128$','^llama-1b/decode-bf16-ctx128$']
patp=['^peak/fma-f32$','^smollm2-135m/prefill-s128(-q8)?$','^gpt2/prefill-s128$']
for r in range(int(sys.argv[1])):
    for t,p in [('1',pats1),('1',patp),('2',patp)]:
        out=subprocess.run(['flock','/tmp/bench.lock','/tmp/eb-new','-threads',t,'-json','-time','2s']+p,capture_output=True,text=True).stdout
        d={}
        for l in out.splitlines():
            try: j=json.loads(l)
            except: continue
            d[j['name']]=j['value']; d[j['name']+'#allocs']=j.get('allocs_per_op')
        runs.append((t,r,d)); print(t,r,json.dumps(d),flush=True)
json.dump(runs,open('/tmp/fin.json','w'))

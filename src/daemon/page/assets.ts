// The page's stylesheet and script, served from the daemon itself (no CDN: the machines have no
// network). The script only listens to /api/events and swaps in the fragments the server rendered;
// it never builds markup from data, and the Content-Security-Policy allows nothing inline.

export const PAGE_CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1a1a1a;--muted:#5a5a5a;--line:#d0d0d0;--ok:#0b6b2b;--warn:#8a5a00;--bad:#a4001d;--card:#f6f6f6}
@media (prefers-color-scheme:dark){:root{--bg:#141414;--fg:#eee;--muted:#aaa;--line:#444;--ok:#5fd38a;--warn:#f0b84a;--bad:#ff7b8b;--card:#1f1f1f}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:1200px;margin:0 auto;padding:0 16px}
h1{font-size:1.4rem;margin:12px 0 4px}h2{font-size:1.2rem;margin:0 0 6px}h3{font-size:1rem;margin:14px 0 6px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:var(--bg);padding:4px 8px;outline:2px solid}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #3b82f6;outline-offset:2px}
.muted,.meta{color:var(--muted)}.meta{font-size:.9rem}
.cluster{border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:14px 0;background:var(--card)}
.health{display:inline-block;padding:0 8px;border-radius:10px;font-weight:600;font-size:.85rem;border:1px solid currentColor}
.health.ok{color:var(--ok)}.health.warn{color:var(--warn)}.health.bad{color:var(--bad)}.health.unknown{color:var(--muted)}
.alert{color:var(--bad);font-weight:600}
.tree ul{list-style:none;margin:0;padding-left:22px;border-left:1px dashed var(--line)}
.tree>ul{padding-left:0;border-left:0}
.tree li{margin:6px 0}
.node{padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);overflow-wrap:anywhere}
.node>span{margin-right:6px}.name{font-size:1.05rem;margin-right:6px}.addr{color:var(--muted)}
.mark{font-weight:600;border:1px dashed currentColor;padding:0 6px;border-radius:4px}
.gtid code,.error{font-size:.85rem}.error{color:var(--bad);margin:4px 0}
.problems{margin:4px 0;padding-left:18px;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}caption{text-align:left;color:var(--muted)}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
nav ul{display:flex;flex-wrap:wrap;gap:12px;list-style:none;padding:0}
@media (max-width:600px){body{font-size:14px}.tree ul{padding-left:12px}th,td{padding:3px}}
`;

export const PAGE_JS = `(function(){
var live=document.getElementById('live');
var updated=document.getElementById('updated');
if(!window.EventSource||!live)return;
var state='';
function say(t){if(t!==state){state=t;live.textContent=t;}}
function stamp(what){if(updated)updated.textContent='Last update '+new Date().toLocaleTimeString()+(what?' ('+what+')':'')+'.';}
function swap(id,html){
var old=document.getElementById(id);if(!old)return;
var a=document.activeElement;var href=a&&old.contains(a)?a.getAttribute('href'):null;
var t=document.createElement('template');t.innerHTML=html;var n=t.content.firstElementChild;if(!n)return;
old.replaceWith(n);
if(href){var links=n.querySelectorAll('a[href]');for(var i=0;i<links.length;i++){if(links[i].getAttribute('href')===href){links[i].focus();break;}}}
}
var es=new EventSource('/api/events');
es.addEventListener('open',function(){say('Live: updates arrive as the daemon sees them.');});
es.addEventListener('error',function(){say('Connection to the daemon lost; retrying. What is shown may be out of date.');if(es.readyState===2){setTimeout(function(){location.reload();},3000);}});
es.addEventListener('cluster',function(e){var d=JSON.parse(e.data);swap(d.id,d.html);stamp(d.name);});
es.addEventListener('main',function(e){var d=JSON.parse(e.data);swap('main',d.html);stamp('');});
})();
`;

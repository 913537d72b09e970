// The benchmark's single-page app: every route's content is fetched as JSON and written
// into #app; links are followed with history.pushState, as client-side routers do.
async function show(path) {
  const id = (path.match(/\/spa\/page\/(\d+)/) || [null, '0'])[1];
  const r = await fetch('/spa/data/' + id + '.json');
  const p = await r.json();
  const app = document.getElementById('app');
  app.innerHTML = '<header><a href="/spa/">Gizmo handbook</a></header>'
    + '<nav>' + p.links.map((l) => '<a href="/spa/page/' + l + '">Page ' + l + '</a>').join(' ') + '</nav>'
    + '<main><article><h1>' + p.title + '</h1>'
    + p.paragraphs.map((t) => '<p>' + t + '</p>').join('') + '</article></main>';
  document.title = p.title;
}
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || !a.getAttribute('href').startsWith('/spa/')) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('href'));
  show(location.pathname);
});
window.addEventListener('popstate', () => show(location.pathname));
show(location.pathname);

// In-page steps of a render (evaluated by chromium.rs through Runtime.evaluate). Each
// call is `(PAGE_JS)(step, argument)`; nothing is left behind on `window` but a guard
// flag. Plain ES2017, no dependencies.
(async function (step, arg) {
  // Elements whose text is about cookies and consent, pinned over the page.
  const COOKIE_SELECTORS = [
    '#onetrust-consent-sdk', '#onetrust-banner-sdk', '#CybotCookiebotDialog',
    '#cookiebanner', '#cookie-banner', '#cookie-notice', '#cookie-law-info-bar',
    '#cookieConsent', '#cookie-consent', '.cc-window', '.cookie-consent', '.cookie-banner',
    '#didomi-host', '.qc-cmp2-container', '#truste-consent-track', '#usercentrics-root',
    '#cmpbox', '.fc-consent-root', '#sp_message_container', '#gdpr-cookie-message',
    '[id*="cookie-banner" i]', '[class*="cookie-banner" i]', '[id*="cookie-consent" i]',
    '[class*="cookie-consent" i]', '[class*="cookieconsent" i]', '[aria-label*="cookie" i]',
  ];
  const COOKIE_WORDS = /cookie|consent|gdpr|datenschutz|privacy settings/i;
  const SEARCH = /search/i;

  function removeCookieWarnings() {
    let removed = 0;
    for (const sel of COOKIE_SELECTORS) {
      let found;
      try { found = document.querySelectorAll(sel); } catch (e) { continue; }
      for (const el of found) { el.remove(); removed++; }
    }
    // Anything else pinned over the page that talks about cookies.
    const candidates = document.querySelectorAll('body div, body section, body aside, body form, body footer');
    let checked = 0;
    for (const el of candidates) {
      if (++checked > 3000) break;
      if (!el.isConnected) continue;
      const pos = getComputedStyle(el).position;
      if (pos !== 'fixed' && pos !== 'sticky') continue;
      const text = (el.textContent || '').slice(0, 4000);
      if (text.length < 2000 && COOKIE_WORDS.test(text)) { el.remove(); removed++; }
    }
    // Banners often lock scrolling while shown.
    for (const el of [document.documentElement, document.body]) {
      if (el && el.style) el.style.overflow = '';
    }
    return removed;
  }

  function clickAll(selector) {
    // Clicks must expand things, not leave the page: links keep their handlers but
    // lose their default navigation (a same-page `#` link is left alone).
    if (!window.__agentbaseNoNav) {
      window.__agentbaseNoNav = true;
      document.addEventListener('click', (e) => {
        const a = e.target && e.target.closest && e.target.closest('a[href]');
        if (a && !(a.getAttribute('href') || '').startsWith('#')) e.preventDefault();
      }, true);
    }
    let clicked = 0;
    let found;
    try { found = document.querySelectorAll(selector); } catch (e) { return 0; }
    for (const el of found) {
      if (clicked >= 100) break;
      if (el.__agentbaseClicked) continue;
      el.__agentbaseClicked = true;
      // Menus and search boxes open chrome, not content (and a search box may load a
      // whole site's index).
      if (el.hasAttribute('aria-haspopup') || SEARCH.test(
        (el.id || '') + ' ' + (el.getAttribute('aria-controls') || '') + ' ' + (el.getAttribute('aria-label') || ''))) continue;
      try { el.click(); clicked++; } catch (e) { /* a throwing handler is the page's problem */ }
    }
    return clicked;
  }

  async function scroll(maxPixels) {
    const step = Math.max(window.innerHeight || 800, 400);
    let y = 0;
    while (y < maxPixels) {
      const height = document.documentElement.scrollHeight;
      if (y + (window.innerHeight || 800) >= height) break;
      y = Math.min(y + step, maxPixels);
      window.scrollTo(0, y);
      await new Promise((r) => setTimeout(r, 20));
    }
    return y;
  }

  function expandIframes() {
    let expanded = 0;
    for (const frame of Array.from(document.querySelectorAll('iframe'))) {
      let doc = null;
      try { doc = frame.contentDocument; } catch (e) { doc = null; }
      if (!doc || !doc.body) continue;
      // Links and images keep pointing where they pointed inside the frame.
      for (const a of doc.querySelectorAll('a[href]')) a.setAttribute('href', a.href);
      for (const img of doc.querySelectorAll('img[src]')) img.setAttribute('src', img.src);
      // Parsed inert (a template), so nothing in the copy loads or runs.
      const t = document.createElement('template');
      t.innerHTML = doc.body.innerHTML;
      for (const x of t.content.querySelectorAll('iframe, script')) x.remove();
      const div = document.createElement('div');
      div.setAttribute('data-iframe-src', frame.src || '');
      div.appendChild(t.content);
      frame.replaceWith(div);
      expanded++;
    }
    return expanded;
  }

  function snapshot(maxBytes) {
    const html = (document.doctype ? '<!DOCTYPE html>\n' : '') + document.documentElement.outerHTML;
    if (html.length > maxBytes) return { tooLarge: html.length };
    return { html: html, url: location.href };
  }

  switch (step) {
    case 'has': return !!document.querySelector(arg);
    case 'cookies': return removeCookieWarnings();
    case 'click': return clickAll(arg);
    case 'scroll': return await scroll(arg);
    case 'iframes': return expandIframes();
    case 'snapshot': return snapshot(arg);
    default: throw new Error('unknown step ' + step);
  }
})

// Kith's progressive enhancement. Every page works without it; with it, adding to the
// shortlist needs no reload, and the print page gets a Print button.
(function () {
  'use strict';

  function announce(text) {
    var region = document.querySelector('[data-announce]');
    if (region) { region.textContent = text; }
  }

  function setCount(count) {
    document.querySelectorAll('[data-shortlist-count]').forEach(function (el) { el.textContent = String(count); });
  }

  // One change at a time: each reply sets the shortlist cookie from the one the request
  // carried, so two quick clicks sent together would lose one of them.
  var pending = Promise.resolve();

  function enhanceShortlist(form) {
    form.addEventListener('submit', function (event) {
      if (!window.fetch || !window.URLSearchParams) { return; }
      event.preventDefault();
      var button = form.querySelector('button');
      var change = form.querySelector('input[name="change"]');
      var name = (button.querySelector('.nhsuk-u-visually-hidden') || {}).textContent || '';
      pending = pending.then(function () {
        return fetch(form.getAttribute('action'), {
          method: 'POST',
          headers: { 'Accept': 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(new FormData(form)).toString(),
          credentials: 'same-origin'
        }).then(function (response) {
          if (!response.ok) { form.submit(); return null; }
          return response.json();
        }).then(function (result) {
          if (!result) { return; }
          setCount(result.count);
          var added = result.in_shortlist;
          change.value = added ? 'remove' : 'add';
          button.setAttribute('aria-pressed', added ? 'true' : 'false');
          button.firstChild.textContent = added ? 'Remove from shortlist' : 'Add to shortlist';
          announce((added ? 'Added to' : 'Removed from') + ' the shortlist' + name + '. ' + result.count + ' on the shortlist.');
        }).catch(function () { form.submit(); });
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-shortlist]').forEach(enhanceShortlist);
    document.querySelectorAll('[data-print]').forEach(function (button) {
      button.hidden = false;
      button.addEventListener('click', function () { window.print(); });
    });
    var summary = document.querySelector('[data-error-summary]');
    var results = document.getElementById('results-heading');
    if (summary) {
      summary.focus();
    } else if (results && window.location.hash === '#results-heading') {
      // After a search, the results: a screen reader starts reading there, and the next
      // Tab goes to the first result rather than back through the form.
      results.focus();
    }
  });
})();

// kam report and dashboard: draws SVG charts from one data object
//   {model, transitions, forecast, customers}
// whose parts are the API's responses (GET /v1/model, GET /v1/model/transitions,
// POST /v1/forecast, GET /v1/model/customers/summary). The report embeds it in
// a JSON script element (id kam-data); the dashboard fetches it from the server that sent the page.
// Plain JavaScript, no dependencies, no network beyond that server.
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
    '#9c755f', '#bab0ac'];
  var KEY_STORAGE = 'kam-api-key';

  // ---------- small helpers ----------

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, parent, text) {
    var n = document.createElement(tag);
    setAttrs(n, attrs);
    if (text !== undefined && text !== null) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }

  function svgEl(tag, attrs, parent, text) {
    var n = document.createElementNS(SVG, tag);
    setAttrs(n, attrs);
    if (text !== undefined && text !== null) n.textContent = text;
    if (parent) parent.appendChild(n);
    return n;
  }

  function setAttrs(n, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) n.setAttribute(k, attrs[k]);
    });
  }

  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }

  function isNum(x) { return typeof x === 'number' && isFinite(x); }

  function fmtInt(x) { return isNum(x) ? Math.round(x).toLocaleString('en-US') : '–'; }

  function fmtNum(x, digits) {
    if (!isNum(x)) return '–';
    return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function fmtPct(x, digits) { return isNum(x) ? fmtNum(100 * x, digits === undefined ? 1 : digits) + '%' : '–'; }

  function fmtCompact(x) {
    if (!isNum(x)) return '–';
    var a = Math.abs(x);
    if (a >= 1e9) return fmtNum(x / 1e9, a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6) return fmtNum(x / 1e6, a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return fmtNum(x / 1e3, a >= 1e5 ? 0 : 1) + 'k';
    if (a >= 100 || a === 0) return fmtInt(x);
    return fmtNum(x, a >= 10 ? 1 : 2);
  }

  function fmtP(p) {
    if (!isNum(p)) return '–';
    return p < 0.001 ? '< 0.001' : fmtNum(p, 3);
  }

  // "Nice" ticks covering [lo, hi].
  function ticks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var span = hi - lo;
    var step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function niceMax(x) {
    if (!(x > 0)) return 1;
    var t = ticks(0, x, 5);
    var step = t.length > 1 ? t[1] - t[0] : x;
    return Math.ceil(x / step - 1e-9) * step;
  }

  function linear(d0, d1, r0, r1) {
    var k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
    return function (v) { return r0 + (v - d0) * k; };
  }

  // A chart frame: an SVG with a plot area of w × h inside margins.
  function frame(container, width, height, margin) {
    var svg = svgEl('svg', {
      viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img',
      preserveAspectRatio: 'xMinYMin meet'
    }, container);
    var g = svgEl('g', { transform: 'translate(' + margin.left + ',' + margin.top + ')' }, svg);
    return { svg: svg, g: g, w: width - margin.left - margin.right, h: height - margin.top - margin.bottom };
  }

  function axisY(f, scale, values, format, label) {
    var g = svgEl('g', { 'class': 'axis y' }, f.g);
    values.forEach(function (v) {
      var y = scale(v);
      svgEl('line', { 'class': 'grid-line', x1: 0, x2: f.w, y1: y, y2: y }, g);
      var t = svgEl('g', { 'class': 'tick' }, g);
      svgEl('text', { x: -7, y: y, dy: '0.32em', 'text-anchor': 'end' }, t, format(v));
    });
    svgEl('line', { 'class': 'domain', x1: 0, x2: 0, y1: 0, y2: f.h }, g);
    if (label) {
      svgEl('text', { 'class': 'axis-label', transform: 'rotate(-90)', x: -f.h / 2, y: -f.marginLeft + 14,
        'text-anchor': 'middle' }, g, label);
    }
  }

  function axisX(f, items, label) {
    // items: [{x, text}]
    var g = svgEl('g', { 'class': 'axis x', transform: 'translate(0,' + f.h + ')' }, f.g);
    svgEl('line', { 'class': 'domain', x1: 0, x2: f.w, y1: 0, y2: 0 }, g);
    items.forEach(function (it) {
      var t = svgEl('g', { 'class': 'tick' }, g);
      svgEl('line', { x1: it.x, x2: it.x, y1: 0, y2: 5, stroke: '#9aa5b1' }, t);
      svgEl('text', { x: it.x, y: 18, 'text-anchor': 'middle' }, t, it.text);
    });
    if (label) svgEl('text', { 'class': 'axis-label', x: f.w / 2, y: 38, 'text-anchor': 'middle' }, g, label);
  }

  function makeFrame(container, width, height, margin) {
    var f = frame(container, width, height, margin);
    f.marginLeft = margin.left;
    return f;
  }

  function emptyNote(container, text) { el('p', { 'class': 'empty' }, clear(container), text); }

  function mix(c1, c2, t) {
    var a = [1, 3, 5].map(function (i) { return parseInt(c1.substr(i, 2), 16); });
    var b = [1, 3, 5].map(function (i) { return parseInt(c2.substr(i, 2), 16); });
    return 'rgb(' + a.map(function (x, i) { return Math.round(x + (b[i] - x) * t); }).join(',') + ')';
  }

  function chartWidth(container, fallback) {
    var w = container.clientWidth;
    return Math.max(320, Math.min(w > 0 ? w : fallback, 1400));
  }

  function periodLabel(span, unit) {
    var start = String(span[0]);
    var u = String(unit || '');
    if (u.indexOf('quarter') >= 0) return start.substr(0, 4) + ' Q' + (Math.floor((+start.substr(5, 2) - 1) / 3) + 1);
    if (u.indexOf('month') >= 0) return start.substr(0, 7);
    if (u.indexOf('year') >= 0) return start.substr(0, 4);
    return start;
  }

  // ---------- header ----------

  function drawHeader(data) {
    var m = data.model;
    var line = clear($('model-line'));
    line.appendChild(document.createTextNode('Model '));
    el('code', null, line, m.id);
    line.appendChild(document.createTextNode(' · as of ' + m.as_of + ' · ' + m.period.periods + ' ' +
      m.period.unit + ' periods from ' + m.period.first_day + ' to ' + m.period.last_day + ' · ' +
      (data.mode === 'dashboard' ? 'live from kam serve' : 'report written by kam ' + m.kam_version)));
    var facts = clear($('facts'));
    var last = m.segment_sizes_last_period || {};
    var active = 0;
    var lapsed = m.lapsed_states || [];
    Object.keys(last).forEach(function (s) { if (lapsed.indexOf(s) < 0) active += last[s]; });
    var items = [
      ['Customers', fmtInt(m.data.customers)],
      ['Not lapsed at as-of', fmtInt(active)],
      [(m.key_state || 'key') + ' accounts', fmtInt(last[m.key_state])],
      ['Transactions used', fmtInt(m.data.rows_used)],
      ['States', String(m.states.length)],
      ['Data', m.data.first_date + ' to ' + m.data.last_date]
    ];
    if (data.customers && !data.customers.missing) {
      items.push(['Expected value, next ' + data.customers.horizon, fmtCompact(data.customers.total_value)]);
    }
    items.forEach(function (it) {
      var d = el('div', null, facts);
      el('dt', null, d, it[0]);
      el('dd', null, d, it[1]);
    });
    document.title = 'kam — ' + m.id;
  }

  // ---------- segment sizes: history + forecast ----------

  // Detailed states (every state) or the six families (the default): one switch for every chart.
  var showDetailed = false;

  // "4 months", "1 quarter"; "4 periods" for runs of days.
  function unitCount(model, n) {
    var u = model && model.period && model.period.unit;
    if (!u || !/^(week|month|quarter|year)$/.test(u)) u = 'period';
    return n + ' ' + u + (n === 1 ? '' : 's');
  }

  function seriesGroups(model, values) {
    var states = model.states;
    var idx = states.map(function (_, i) { return i; });
    if (!showDetailed && model.families && model.families.length < states.length) {
      return model.families.map(function (f) {
        return { name: f.name, members: f.states.map(function (s) { return states.indexOf(s); }) };
      });
    }
    // Detailed: at most 10 lines, the 9 largest states (the key state always among them) and
    // "other" when there are more.
    if (states.length <= 10) return idx.map(function (i) { return { name: states[i], members: [i] }; });
    var key = states.indexOf(model.key_state);
    var peak = idx.map(function (i) { return Math.max.apply(null, values.map(function (v) { return v[i] || 0; })); });
    idx.sort(function (a, b) { return (b === key) - (a === key) || peak[b] - peak[a] || a - b; });
    var keep = idx.slice(0, 9).sort(function (a, b) { return a - b; });
    var groups = keep.map(function (i) { return { name: states[i], members: [i] }; });
    var rest = idx.slice(9).sort(function (a, b) { return a - b; });
    groups.push({ name: 'other (' + rest.length + ' states)', members: rest });
    return groups;
  }

  // The switch between families and detailed states, above a chart.
  function detailSwitch(box, redraw) {
    var label = el('label', { 'class': 'switch' }, box);
    var input = el('input', { type: 'checkbox', 'data-detailed': '1' }, label);
    input.checked = showDetailed;
    label.appendChild(document.createTextNode(' detailed states'));
    input.addEventListener('change', function () { showDetailed = input.checked; redraw(); });
  }

  // Lapsed states grow without bound and would flatten every other line: hidden at first.
  function lapsedHidden(model) {
    var hidden = {};
    (model.lapsed_states || []).forEach(function (s) { hidden[s] = true; });
    (model.families || []).forEach(function (f) {
      if (f.states.every(function (s) { return hidden[s]; })) hidden[f.name] = true;
    });
    return hidden;
  }

  // Moves labels at the right end of lines apart so that they do not overlap.
  function spreadLabels(labels, gap, top, bottom) {
    labels.sort(function (a, b) { return a.y - b.y; });
    for (var i = 1; i < labels.length; i++) labels[i].y = Math.max(labels[i].y, labels[i - 1].y + gap);
    var over = labels.length ? labels[labels.length - 1].y - bottom : 0;
    if (over > 0) labels.forEach(function (l) { l.y -= over; });
    for (var k = labels.length - 2; k >= 0; k--) labels[k].y = Math.min(labels[k].y, labels[k + 1].y - gap);
    labels.forEach(function (l) { l.y = Math.max(top, l.y); });
    return labels;
  }

  function drawSizes(data, hidden) {
    var box = clear($('chart-sizes'));
    var m = data.model;
    var states = m.states;
    var history = m.sizes_by_period || [];
    var spans = m.period_spans || [];
    var fc = (data.forecast && data.forecast.horizons) || [];
    var T = history.length;
    if (T === 0) { emptyNote(box, 'No segment sizes stored in this model.'); return; }
    var pick = function (obj) { return states.map(function (s) { return obj && isNum(obj[s]) ? obj[s] : null; }); };
    var fcVals = fc.map(function (h) { return pick(h.sizes); });
    // Bands: the 90% prediction interval on the counts that will be observed when present,
    // else the interval on the expected sizes.
    var fcLo = fc.map(function (h) { var b = h.realized_lo || h.sizes_lo; return b ? pick(b) : null; });
    var fcHi = fc.map(function (h) { var b = h.realized_hi || h.sizes_hi; return b ? pick(b) : null; });
    var hasBands = fc.length > 0 && fcLo.every(Boolean) && fcHi.every(Boolean);
    detailSwitch(box, function () { drawSizes(data, hidden); drawTransitions(data); });
    var groups = seriesGroups(m, history.concat(fcVals));
    var sum = function (row, g) {
      if (!row) return null;
      var t = 0;
      for (var k = 0; k < g.members.length; k++) { if (row[g.members[k]] === null) return null; t += row[g.members[k]]; }
      return t;
    };
    var width = chartWidth(box, 1100);
    var f = makeFrame(box, width, 330, { top: 14, right: 120, bottom: 46, left: 64 });
    var N = T + fc.length;
    var x = linear(0, Math.max(N - 1, 1), 0, f.w);
    var ymax = 0;
    groups.forEach(function (g, gi) {
      if (hidden[g.name]) return;
      history.forEach(function (r) { ymax = Math.max(ymax, sum(r, g) || 0); });
      fcVals.forEach(function (r, k) { ymax = Math.max(ymax, sum(hasBands ? fcHi[k] : r, g) || 0); });
    });
    ymax = niceMax(ymax);
    var y = linear(0, ymax, f.h, 0);
    axisY(f, y, ticks(0, ymax, 5), fmtCompact, 'customers');
    var every = Math.max(1, Math.ceil(N / Math.max(2, Math.floor(f.w / 70))));
    var xt = [];
    for (var i = 0; i < T; i += every) xt.push({ x: x(i), text: periodLabel(spans[i] || ['t' + i], m.period.unit) });
    for (var h = 1; h <= fc.length; h++) if ((T - 1 + h) % every === 0 || h === fc.length) xt.push({ x: x(T - 1 + h), text: '+' + h });
    axisX(f, xt, unitCount(m, 2).replace(/^2 /, '') + ' (history to the as-of date, then +h ahead)');
    if (fc.length) {
      var xa = x(T - 1);
      var shade = svgEl('rect', { x: xa, y: 0, width: f.w - xa, height: f.h, fill: '#f4f7fb' });
      f.g.insertBefore(shade, f.g.firstChild);
      svgEl('line', { x1: xa, x2: xa, y1: 0, y2: f.h, stroke: '#9aa5b1', 'stroke-dasharray': '3 3' }, f.g);
      svgEl('text', { x: xa + 4, y: 10, 'class': 'axis-label' }, f.g, 'as of ' + m.as_of);
    }
    var labels = [];
    groups.forEach(function (g, gi) {
      if (hidden[g.name]) return;
      var colour = PALETTE[gi % PALETTE.length];
      var pts = history.map(function (r, t) { return [x(t), y(sum(r, g))]; });
      var series = svgEl('g', { 'class': 'series', 'data-state': g.name }, f.g);
      if (hasBands) {
        var upper = fcHi.map(function (r, k) { return [x(T + k), y(sum(r, g))]; });
        var lower = fcLo.map(function (r, k) { return [x(T + k), y(sum(r, g))]; }).reverse();
        var band = [pts[T - 1]].concat(upper, lower, [pts[T - 1]]);
        svgEl('path', { d: 'M' + band.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L') + 'Z',
          fill: colour, 'fill-opacity': 0.16, stroke: 'none' }, series);
      }
      svgEl('path', { d: 'M' + pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L'),
        fill: 'none', stroke: colour, 'stroke-width': 2 }, series);
      if (fc.length) {
        var fpts = [pts[T - 1]].concat(fcVals.map(function (r, k) { return [x(T + k), y(sum(r, g))]; }));
        svgEl('path', { d: 'M' + fpts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L'),
          fill: 'none', stroke: colour, 'stroke-width': 2, 'stroke-dasharray': '6 4' }, series);
      }
      history.concat(fcVals).forEach(function (r, t) {
        var v = sum(r, g);
        var c = svgEl('circle', { cx: x(t), cy: y(v), r: 2.6, fill: colour }, series);
        var label = t < T ? periodLabel(spans[t] || ['t' + t], m.period.unit) : '+' + (t - T + 1);
        var extra = '';
        if (t >= T && hasBands) extra = ' (interval ' + fmtInt(sum(fcLo[t - T], g)) + '–' + fmtInt(sum(fcHi[t - T], g)) + ')';
        svgEl('title', null, c, g.name + ', ' + label + ': ' + fmtInt(v) + extra);
      });
      var lastPt = fc.length ? [x(N - 1), y(sum(fcVals[fc.length - 1], g))] : pts[T - 1];
      labels.push({ x: lastPt[0] + 6, y: lastPt[1], text: g.name, colour: colour });
    });
    spreadLabels(labels, 12, 0, f.h).forEach(function (l) {
      svgEl('text', { x: l.x, y: l.y, dy: '0.32em', 'font-size': 11, fill: l.colour }, f.g, l.text);
    });
    var legend = el('div', { 'class': 'legend' }, box);
    groups.forEach(function (g, gi) {
      var item = el('span', { 'class': 'item' + (hidden[g.name] ? ' off' : ''), title: 'show or hide ' + g.name }, legend);
      el('span', { 'class': 'swatch', style: 'background:' + PALETTE[gi % PALETTE.length] }, item);
      el('span', null, item, g.name);
      item.addEventListener('click', function () {
        hidden[g.name] = !hidden[g.name];
        drawSizes(data, hidden);
      });
    });
    var key = el('span', { 'class': 'item' }, legend);
    el('span', { 'class': 'swatch dash' }, key);
    el('span', null, key, 'forecast');
    if (hasBands) {
      var b = el('span', { 'class': 'item' }, legend);
      el('span', { 'class': 'swatch band', style: 'background:#4e79a7' }, b);
      el('span', null, b, 'forecast interval');
    }
    drawKeyInset(box, m, groups, history, fcVals, fcLo, fcHi, hasBands, ymax, sum);
    var cap = 'Customers in each segment at the end of every training period, then the population forecast for the next ' +
      unitCount(m, fc.length) + ' from the mix at the as-of date (no new customers). ';
    var realized = fc.length > 0 && fc[0].realized_lo;
    cap += hasBands
      ? (realized
        ? 'Shaded bands: 90% prediction intervals on the counts (posterior draws of the chain plus each customer\'s chance of moving; bands of grouped segments are summed).'
        : 'Shaded bands: 90% intervals on the expected sizes.')
      : 'The forecast carries no intervals.';
    var off = groups.filter(function (g) { return hidden[g.name]; }).map(function (g) { return g.name; });
    $('sizes-caption').textContent = cap + (off.length ? ' Hidden: ' + off.join(', ') + '.' : '') +
      ' Click a legend entry to hide or show it.';
  }

  // The key line on its own scale when the other lines flatten it (its peak under a tenth of
  // the chart's).
  function drawKeyInset(box, m, groups, history, fcVals, fcLo, fcHi, hasBands, ymax, sum) {
    var k = m.states.indexOf(m.key_state);
    var g = groups.filter(function (g) { return g.members.indexOf(k) >= 0; })[0];
    if (!g) return;
    var rows = history.concat(fcVals);
    var peak = 0;
    rows.forEach(function (r) { peak = Math.max(peak, sum(r, g) || 0); });
    if (hasBands) fcHi.forEach(function (r) { peak = Math.max(peak, sum(r, g) || 0); });
    if (peak === 0 || peak >= ymax / 10) return;
    var T = history.length, N = rows.length;
    var f = makeFrame(box, chartWidth(box, 1100), 150, { top: 18, right: 120, bottom: 24, left: 64 });
    f.svg.setAttribute('data-inset', 'key');
    var x = linear(0, Math.max(N - 1, 1), 0, f.w);
    var top = niceMax(peak);
    var y = linear(0, top, f.h, 0);
    axisY(f, y, ticks(0, top, 3), fmtCompact, g.name);
    svgEl('text', { x: 0, y: -6, 'class': 'axis-label' }, f.g, g.name + ' on its own scale');
    var series = svgEl('g', { 'class': 'series', 'data-state': g.name + ' (own scale)' }, f.g);
    if (hasBands && T > 0) {
      var upper = fcHi.map(function (r, i) { return [x(T + i), y(sum(r, g))]; });
      var lower = fcLo.map(function (r, i) { return [x(T + i), y(sum(r, g))]; }).reverse();
      var start = [x(T - 1), y(sum(history[T - 1], g))];
      var band = [start].concat(upper, lower, [start]);
      svgEl('path', { d: 'M' + band.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L') + 'Z',
        fill: PALETTE[groups.indexOf(g) % PALETTE.length], 'fill-opacity': 0.16, stroke: 'none' }, series);
    }
    var pts = rows.map(function (r, t) { return [x(t), y(sum(r, g))]; });
    svgEl('path', { d: 'M' + pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L'),
      fill: 'none', stroke: PALETTE[groups.indexOf(g) % PALETTE.length], 'stroke-width': 2 }, series);
    pts.forEach(function (p, t) {
      var c = svgEl('circle', { cx: p[0], cy: p[1], r: 2.6, fill: PALETTE[groups.indexOf(g) % PALETTE.length] }, series);
      svgEl('title', null, c, g.name + ': ' + fmtInt(sum(rows[t], g)));
    });
  }

  // ---------- transition heatmap ----------

  // The transition matrix between families: each state's row weighted by its observed moves
  // (the plain average where a family has none), counts summed; no intervals.
  function familyTransitions(t, families) {
    var index = t.states.map(function (s) { return families.findIndex(function (f) { return f.states.indexOf(s) >= 0; }); });
    var g = families.length;
    var zero = function () { return families.map(function () { return 0; }); };
    var P = families.map(zero), counts = families.map(zero), mass = zero(), rows = zero();
    t.matrix.forEach(function (row, i) {
      var w = t.counts[i].reduce(function (a, b) { return a + b; }, 0);
      var f = index[i];
      mass[f] += w;
      rows[f] += 1;
      row.forEach(function (p, j) { P[f][index[j]] += w * p; counts[f][index[j]] += t.counts[i][j]; });
    });
    for (var f = 0; f < g; f++) {
      if (mass[f] > 0) { P[f] = P[f].map(function (x) { return x / mass[f]; }); continue; }
      P[f] = zero();
      t.matrix.forEach(function (row, i) {
        if (index[i] === f) row.forEach(function (p, j) { P[f][index[j]] += p / rows[f]; });
      });
    }
    return { states: families.map(function (f) { return f.name; }), matrix: P, counts: counts,
      moves: t.moves, prior: t.prior, families: true };
  }

  function drawTransitions(data) {
    var box = clear($('chart-transitions'));
    var t = data.transitions;
    var fam = data.model.families;
    var grouped = !showDetailed && fam && fam.length < t.states.length;
    detailSwitch(box, function () { drawSizes(data, lapsedHidden(data.model)); drawTransitions(data); });
    if (grouped) t = familyTransitions(t, fam);
    var states = t.states;
    var n = states.length;
    var P = t.matrix;
    var counts = t.counts;
    var lo = t.interval_lo, hi = t.interval_hi;
    var longest = Math.max.apply(null, states.map(function (s) { return s.length; }));
    var labelW = Math.min(150, 14 + longest * 7);
    var avail = chartWidth(box, 560) - labelW - 70;
    var cell = Math.max(14, Math.min(64, Math.floor(avail / n)));
    var margin = { top: labelW, right: 70, bottom: 10, left: labelW };
    var f = makeFrame(box, margin.left + n * cell + margin.right, margin.top + n * cell + 56, margin);
    var rowTotal = counts.map(function (r) { return r.reduce(function (a, b) { return a + b; }, 0); });
    var level = isNum(t.credible_level) ? Math.round(100 * t.credible_level) + '% credible interval' : 'interval';
    for (var i = 0; i < n; i++) {
      svgEl('text', { x: -6, y: i * cell + cell / 2, dy: '0.32em', 'text-anchor': 'end', 'font-size': 11 }, f.g, states[i]);
      svgEl('text', { transform: 'translate(' + (i * cell + cell / 2) + ',-6) rotate(-55)', 'font-size': 11 }, f.g, states[i]);
      svgEl('text', { x: n * cell + 6, y: i * cell + cell / 2, dy: '0.32em', 'font-size': 10.5, fill: '#616e7c' }, f.g,
        'n=' + fmtCompact(rowTotal[i]));
      for (var j = 0; j < n; j++) {
        var p = P[i][j];
        var allowed = !t.allowed || t.allowed[i][j];
        var fill = allowed ? mix('#f7fbff', '#08306b', Math.sqrt(Math.max(0, Math.min(1, p)))) : '#eceff3';
        var r = svgEl('rect', { x: j * cell, y: i * cell, width: cell - 1, height: cell - 1, fill: fill,
          'data-p': p }, f.g);
        var tip = states[i] + ' → ' + states[j] + ': p = ' + fmtNum(p, 3);
        if (lo && hi) tip += ' (' + level + ' ' + fmtNum(lo[i][j], 3) + '–' + fmtNum(hi[i][j], 3) + ')';
        tip += '\n' + fmtInt(counts[i][j]) + ' of ' + fmtInt(rowTotal[i]) + ' observed moves out of ' + states[i];
        if (!allowed) tip += '\n(not a move the segment scheme allows)';
        svgEl('title', null, r, tip);
        if (cell >= 30 && allowed && p >= 0.005) {
          svgEl('text', { x: j * cell + cell / 2, y: i * cell + cell / 2, dy: '0.32em', 'text-anchor': 'middle',
            'font-size': cell >= 44 ? 11.5 : 9.5, fill: p > 0.35 ? '#ffffff' : '#1f2933', 'pointer-events': 'none' }, f.g,
            cell >= 44 ? fmtPct(p, 0) : Math.round(100 * p));
        }
      }
    }
    svgEl('text', { 'class': 'axis-label', x: n * cell / 2, y: -labelW + 12, 'text-anchor': 'middle' }, f.g, 'to (next period)');
    svgEl('text', { 'class': 'axis-label', transform: 'rotate(-90)', x: -n * cell / 2, y: -labelW + 12,
      'text-anchor': 'middle' }, f.g, 'from');
    // Colour legend.
    var gw = Math.min(220, n * cell), gy = n * cell + 18;
    var defs = svgEl('defs', null, f.svg);
    var grad = svgEl('linearGradient', { id: 'kam-heat', x1: 0, x2: 1, y1: 0, y2: 0 }, defs);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (s) {
      svgEl('stop', { offset: s, 'stop-color': mix('#f7fbff', '#08306b', Math.sqrt(s)) }, grad);
    });
    svgEl('rect', { x: 0, y: gy, width: gw, height: 10, fill: 'url(#kam-heat)', stroke: '#d9e2ec' }, f.g);
    [0, 0.25, 0.5, 1].forEach(function (s) {
      svgEl('text', { x: gw * Math.sqrt(s), y: gy + 24, 'text-anchor': 'middle', 'font-size': 10, fill: '#616e7c' }, f.g, fmtPct(s, 0));
    });
    svgEl('text', { x: gw + 10, y: gy + 9, 'font-size': 10.5, fill: '#616e7c' }, f.g, 'transition probability');
    $('transitions-caption').textContent = 'Probability of moving from a segment (row) to a segment (column) in one ' +
      unitCount(data.model, 1).replace(/^1 /, '') + ', from ' + fmtInt(t.moves) + ' observed moves (prior ' + t.prior +
      ' on allowed moves). ' + (t.families
        ? 'Between families: each state\'s row weighted by its moves; switch on detailed states for every state and its ' + level + '.'
        : 'Hover a cell for its count and ' + level + '.');
  }

  // ---------- value concentration ----------

  function drawConcentration(data) {
    var box = clear($('chart-concentration'));
    var c = data.customers;
    if (!c || c.missing) { emptyNote(box, (c && c.missing) || 'No per-customer data.'); $('concentration-caption').textContent = ''; return; }
    var width = Math.min(chartWidth(box, 520), 560);
    var f = makeFrame(box, width, 330, { top: 14, right: 20, bottom: 46, left: 56 });
    var x = linear(0, 1, 0, f.w), y = linear(0, 1, f.h, 0);
    var tv = [0, 0.2, 0.4, 0.6, 0.8, 1];
    axisY(f, y, tv, function (v) { return fmtPct(v, 0); }, 'share of expected value');
    axisX(f, tv.map(function (v) { return { x: x(v), text: fmtPct(v, 0) }; }), 'share of customers, highest expected value first');
    svgEl('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: '#9aa5b1', 'stroke-dasharray': '4 4' }, f.g);
    svgEl('text', { x: x(0.62), y: y(0.56), 'font-size': 10.5, fill: '#616e7c', transform: 'rotate(' +
      (-Math.atan2(f.h, f.w) * 180 / Math.PI) + ',' + x(0.62) + ',' + y(0.56) + ')' }, f.g, 'equal value per customer');
    var pts = c.concentration.map(function (p) { return [x(p.customer_share), y(p.value_share)]; });
    var line = pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L');
    svgEl('path', { d: 'M' + line + 'L' + x(1).toFixed(1) + ',' + y(0).toFixed(1) + 'L' + x(0) + ',' + y(0) + 'Z',
      fill: '#4e79a7', 'fill-opacity': 0.12 }, f.g);
    svgEl('path', { d: 'M' + line, fill: 'none', stroke: '#4e79a7', 'stroke-width': 2.2 }, f.g);
    (c.top_shares || []).forEach(function (s) {
      if (s.customer_share < 0.04) return;
      var cx = x(s.customer_share), cy = y(s.value_share);
      var dot = svgEl('circle', { cx: cx, cy: cy, r: 4, fill: '#e15759', stroke: '#fff', 'stroke-width': 1.5 }, f.g);
      svgEl('title', null, dot, 'top ' + fmtPct(s.customer_share, 0) + ' of customers hold ' + fmtPct(s.value_share) + ' of expected value');
      svgEl('text', { x: cx + 7, y: cy + 12, 'font-size': 11 }, f.g, 'top ' + fmtPct(s.customer_share, 0) + ': ' + fmtPct(s.value_share, 0));
    });
    var top20 = (c.top_shares || []).filter(function (s) { return Math.abs(s.customer_share - 0.2) < 1e-9; })[0];
    $('concentration-caption').textContent = 'Pareto curve of expected value over the next ' + unitCount(data.model, c.horizon) + ' (' +
      (isNum(c.discount_rate) ? 'discount ' + fmtPct(c.discount_rate) + ' per ' + unitCount(data.model, 1).replace(/^1 /, '') : 'discounted as scored') + ') across ' +
      fmtInt(c.customers) + ' customers' +
      (top20 ? ': the top 20% hold ' + fmtPct(top20.value_share) + '.' : '.');
  }

  // ---------- churn risk ----------

  function drawChurn(data) {
    var box = clear($('chart-churn'));
    var c = data.customers;
    if (!c || c.missing) { emptyNote(box, (c && c.missing) || 'No per-customer data.'); $('churn-caption').textContent = ''; return; }
    var h = c.churn;
    var width = Math.min(chartWidth(box, 520), 560);
    var f = makeFrame(box, width, 330, { top: 14, right: 20, bottom: 46, left: 56 });
    var x = linear(0, 1, 0, f.w);
    var ymax = niceMax(Math.max.apply(null, h.counts.concat([1])));
    var y = linear(0, ymax, f.h, 0);
    axisY(f, y, ticks(0, ymax, 5), fmtCompact, 'customers');
    axisX(f, [0, 0.25, 0.5, 0.75, 1].map(function (v) { return { x: x(v), text: fmtPct(v, 0) }; }),
      'probability of lapsing within ' + unitCount(data.model, c.horizon));
    h.counts.forEach(function (n, k) {
      var x0 = x(h.edges[k]), x1 = x(h.edges[k + 1]);
      var mid = (h.edges[k] + h.edges[k + 1]) / 2;
      var r = svgEl('rect', { x: x0 + 0.5, y: y(n), width: Math.max(1, x1 - x0 - 1), height: f.h - y(n),
        fill: mix('#59a14f', '#e15759', mid) }, f.g);
      svgEl('title', null, r, fmtInt(n) + ' customers with churn probability ' + fmtPct(h.edges[k], 0) + '–' + fmtPct(h.edges[k + 1], 0));
    });
    var shown = h.counts.reduce(function (a, b) { return a + b; }, 0);
    $('churn-caption').textContent = 'Customers by their probability of first reaching a lapsed state within ' +
      unitCount(data.model, c.horizon) + ': ' + fmtInt(shown) + ' customers; ' + fmtInt(h.lapsed_now) + ' already lapsed (probability 1) are left out.';
  }

  // ---------- key accounts at risk ----------

  function drawAtRisk(data) {
    var box = clear($('at-risk'));
    var c = data.customers;
    if (!c || c.missing) { emptyNote(box, (c && c.missing) || 'No per-customer data.'); $('at-risk-caption').textContent = ''; return; }
    if (!c.at_risk.length) { emptyNote(box, 'No ' + (c.key_state || 'key') + ' accounts.'); return; }
    var table = el('table', { 'class': 'data', id: 'at-risk-table' }, box);
    var head = el('tr', null, el('thead', null, table));
    var key = c.key_state || 'key';
    [['#', 'num'], ['customer', ''], ['segment', ''], ['value, next ' + unitCount(data.model, c.horizon), 'num'], ['value at risk', 'num'],
      ['P(leave ' + key + ')', 'num'], ['silent / usual gap (days)', 'num'], ['spend change', 'num']]
      .forEach(function (h) { el('th', { 'class': h[1] }, head, h[0]); });
    var body = el('tbody', null, table);
    var top = c.at_risk[0].value_at_risk || 1;
    var opt = function (x, f) { return x === null || x === undefined ? '–' : f(x); };
    c.at_risk.forEach(function (a, i) {
      var tr = el('tr', null, body);
      el('td', { 'class': 'num' }, tr, String(i + 1));
      el('td', null, tr, a.customer_id);
      el('td', null, tr, a.previous_segment && a.previous_segment !== a.segment ? a.previous_segment + ' → ' + a.segment : a.segment);
      el('td', { 'class': 'num' }, tr, fmtNum(a.value, 0));
      var td = el('td', { 'class': 'num' }, tr, fmtNum(a.value_at_risk, 0));
      el('span', { 'class': 'riskbar', style: 'width:' + Math.max(2, Math.round(60 * a.value_at_risk / top)) + 'px' }, td);
      el('td', { 'class': 'num' }, tr, opt(a.p_leave_key, fmtPct));
      el('td', { 'class': 'num' }, tr, opt(a.silent_days, String) + ' / ' + opt(a.usual_gap_days, function (g) { return fmtNum(g, 0); }));
      el('td', { 'class': 'num' }, tr, opt(a.spend_change, function (x) { return (x >= 0 ? '+' : '') + Math.round(100 * x) + '%'; }));
    });
    var m = c.key_moves || { entered: 0, left: 0 };
    $('at-risk-caption').textContent = 'The ' + c.at_risk.length + ' ' + key + ' accounts (and accounts ' + key +
      ' a period ago) with the most value at risk: expected value over the next ' + unitCount(data.model, c.horizon) +
      ' if the account keeps buying at its own rate, less its expected value. P(leave ' + key + '): probability of not being ' +
      key + ' at the end of the horizon. ' + fmtInt(m.entered) + ' accounts entered ' + key + ' in the last period and ' +
      fmtInt(m.left) + ' left it; together the ' + fmtInt(c.key_accounts) + ' ' + key + ' accounts have ' +
      fmtNum(c.key_value_at_risk, 0) + ' at risk. Customers from ' +
      (c.source === 'snapshot' ? 'the model\'s customer snapshot' : c.source) + '.';
  }

  // ---------- backtest ----------

  var METRICS = [
    ['next_segment', 'Next segment', [['log_loss', 'log loss', -1, 3], ['accuracy', 'accuracy', 1, 'pct']]],
    ['no_purchase', 'No purchase in the holdout', [['auc', 'AUC', 1, 3], ['brier', 'Brier score', -1, 3], ['log_loss', 'log loss', -1, 3]]],
    ['holdout_spend', 'Spend in the holdout', [['mae', 'MAE', -1, 0], ['rmse', 'RMSE', -1, 0], ['spearman', 'Spearman rank correlation', 1, 3],
      ['total_error_pct', 'total error (%)', -2, 1], ['top20_capture', 'value captured by the top 20% predicted', 1, 'pct']]]
  ];

  function drawBacktest(data) {
    var box = clear($('backtest'));
    var cal = clear($('chart-calibration'));
    var b = data.model.backtest;
    if (!b) {
      emptyNote(box, 'No backtest stored with this model (train with --backtest-last K to store one).');
      $('backtest-caption').textContent = '';
      return;
    }
    $('backtest-caption').textContent = 'Trained on history up to ' + b.calibration_end + ', forecast ' + unitCount(data.model, b.holdout_periods) +
      ' (' + b.holdout_start + ' to ' + b.holdout_end + ') for ' + fmtInt(b.customers) +
      ' customers, compared with what happened, with two naive baselines and, where they were fitted, with BG/NBD and Pareto/NBD (+ Gamma–Gamma spend), the field\'s standard models. Best of each row in bold; the model in green where it beats the naive baselines.';
    var table = el('table', { 'class': 'data', id: 'backtest-table' }, box);
    var head = el('tr', null, el('thead', null, table));
    var btyd = ['no_purchase', 'holdout_spend'].some(function (k) { return b[k] && (b[k].bg_nbd || b[k].pareto_nbd); });
    var heads = ['metric', 'model', 'last state persists', 'segment average'].concat(btyd ? ['BG/NBD + GG', 'Pareto/NBD + GG'] : []);
    var cols = heads.length;
    heads.forEach(function (h, i) { el('th', { 'class': i ? 'num' : '' }, head, h); });
    var body = el('tbody', null, table);
    METRICS.forEach(function (group) {
      var g = b[group[0]];
      if (!g) return;
      el('td', { colspan: cols }, el('tr', { 'class': 'group' }, body), group[1]);
      group[2].forEach(function (metric) {
        var key = metric[0], dir = metric[2], digits = metric[3];
        var vals = [g.model, g.persistence, g.segment_average].concat(btyd ? [g.bg_nbd, g.pareto_nbd] : [])
          .map(function (o) { return o && isNum(o[key]) ? o[key] : null; });
        if (vals[0] === null) return;
        var score = function (v) { return v === null ? -Infinity : dir === -2 ? -Math.abs(v) : dir * v; };
        var best = Math.max.apply(null, vals.map(score));
        var tr = el('tr', null, body);
        el('td', null, tr, metric[1] + (dir === 1 ? ' ↑' : ' ↓'));
        vals.forEach(function (v, i) {
          var cls = 'num';
          if (v !== null && score(v) === best) cls += ' best';
          if (i === 0) cls += score(v) >= Math.max(score(vals[1]), score(vals[2])) ? ' better' : ' worse';
          el('td', { 'class': cls }, tr, v === null ? '–' : digits === 'pct' ? fmtPct(v) : fmtNum(v, digits));
        });
      });
    });
    if (b.segment_sizes && b.segment_sizes.length) {
      el('td', { colspan: cols }, el('tr', { 'class': 'group' }, body), 'Segment sizes: share of customers misplaced by the forecast');
      b.segment_sizes.forEach(function (s, k) {
        var tr = el('tr', null, body);
        el('td', null, tr, 'period +' + (k + 1) + ' (from ' + s.period_start + ')');
        el('td', { 'class': 'num' }, tr, fmtPct(s.misplaced_share));
        el('td', { colspan: cols - 2 }, tr, '');
      });
    }
    var calib = b.no_purchase && b.no_purchase.model && b.no_purchase.model.calibration;
    if (!calib || !calib.length) { emptyNote(cal, 'No calibration table stored.'); return; }
    var width = Math.min(chartWidth(cal, 420), 440);
    var f = makeFrame(cal, width, 300, { top: 24, right: 16, bottom: 46, left: 56 });
    var x = linear(0, 1, 0, f.w), y = linear(0, 1, f.h, 0);
    var tv = [0, 0.25, 0.5, 0.75, 1];
    axisY(f, y, tv, function (v) { return fmtPct(v, 0); }, 'observed rate');
    axisX(f, tv.map(function (v) { return { x: x(v), text: fmtPct(v, 0) }; }), 'predicted probability of no purchase');
    svgEl('text', { x: 0, y: -10, 'font-size': 12, 'font-weight': 600 }, f.g, 'Calibration by decile (model)');
    svgEl('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: '#9aa5b1', 'stroke-dasharray': '4 4' }, f.g);
    svgEl('path', { d: 'M' + calib.map(function (c) { return x(c.mean_predicted).toFixed(1) + ',' + y(c.observed_rate).toFixed(1); }).join('L'),
      fill: 'none', stroke: '#4e79a7', 'stroke-width': 1.5 }, f.g);
    calib.forEach(function (c) {
      var dot = svgEl('circle', { cx: x(c.mean_predicted), cy: y(c.observed_rate), r: 4, fill: '#4e79a7' }, f.g);
      svgEl('title', null, dot, 'decile ' + c.decile + ': predicted ' + fmtPct(c.mean_predicted) + ', observed ' +
        fmtPct(c.observed_rate) + ' (' + fmtInt(c.customers) + ' customers)');
    });
  }

  // Holdout purchases by calibration frequency: actual and each BTYD baseline's expectation
  // (the BTYD papers' conditional-expectation figure).
  function drawFrequency(data) {
    var box = clear($('chart-frequency'));
    var b = data.model.backtest;
    var bins = b && b.purchases_by_frequency;
    if (!bins || !bins.length) { emptyNote(box, 'No holdout purchases by frequency stored.'); return; }
    var width = Math.min(chartWidth(box, 420), 440);
    var f = makeFrame(box, width, 260, { top: 24, right: 16, bottom: 46, left: 56 });
    var x = linear(0, Math.max(bins.length - 1, 1), 0, f.w);
    var top = 0;
    bins.forEach(function (c) { top = Math.max(top, c.actual, c.bg_nbd || 0, c.pareto_nbd || 0); });
    top = niceMax(top);
    var y = linear(0, top, f.h, 0);
    axisY(f, y, ticks(0, top, 4), function (v) { return fmtNum(v, 1); }, 'purchases per customer');
    axisX(f, bins.map(function (c, i) { return { x: x(i), text: c.frequency + (c.or_more ? '+' : '') }; }),
      'repeat purchases in the calibration period');
    svgEl('text', { x: 0, y: -10, 'font-size': 12, 'font-weight': 600 }, f.g, 'Holdout purchases by frequency');
    [['actual', 'actual', '#1f2933', ''], ['bg_nbd', 'BG/NBD', '#4e79a7', '6 4'], ['pareto_nbd', 'Pareto/NBD', '#f28e2b', '2 3']]
      .forEach(function (s, k) {
        if (!bins.every(function (c) { return isNum(c[s[0]]); })) return;
        var series = svgEl('g', { 'class': 'series', 'data-state': s[1] }, f.g);
        svgEl('path', { d: 'M' + bins.map(function (c, i) { return x(i).toFixed(1) + ',' + y(c[s[0]]).toFixed(1); }).join('L'),
          fill: 'none', stroke: s[2], 'stroke-width': 1.8, 'stroke-dasharray': s[3] }, series);
        bins.forEach(function (c, i) {
          var dot = svgEl('circle', { cx: x(i), cy: y(c[s[0]]), r: 3, fill: s[2] }, series);
          svgEl('title', null, dot, s[1] + ', ' + c.frequency + (c.or_more ? '+' : '') + ' repeat purchases: ' +
            fmtNum(c[s[0]], 2) + ' (' + fmtInt(c.customers) + ' customers)');
        });
        svgEl('text', { x: f.w - 4, y: 12 + 14 * k, 'text-anchor': 'end', 'font-size': 11, fill: s[2] }, f.g, s[1]);
      });
  }

  // Cumulative purchase days per customer over the holdout periods: actual and each BTYD
  // baseline's expectation (the tracking plot).
  function drawTracking(data) {
    var box = clear($('chart-tracking'));
    var b = data.model.backtest;
    var periods = b && b.purchases_by_period;
    if (!periods || !periods.length) { emptyNote(box, 'No purchase tracking stored.'); return; }
    var lines = [['actual', 'actual', '#1f2933', ''], ['bg_nbd', 'BG/NBD', '#4e79a7', '6 4'], ['pareto_nbd', 'Pareto/NBD', '#f28e2b', '2 3']]
      .filter(function (s) { return periods.every(function (p) { return isNum(p[s[0]]); }); })
      .map(function (s) {
        var run = 0;
        return { s: s, values: periods.map(function (p) { run += p[s[0]]; return run; }) };
      });
    var width = Math.min(chartWidth(box, 420), 440);
    var f = makeFrame(box, width, 260, { top: 24, right: 16, bottom: 46, left: 56 });
    var n = periods.length;
    var x = linear(0, n, 0, f.w);
    var top = niceMax(Math.max.apply(null, lines.map(function (l) { return l.values[n - 1]; })));
    var y = linear(0, top, f.h, 0);
    axisY(f, y, ticks(0, top, 4), function (v) { return fmtNum(v, 2); }, 'per customer');
    var every = Math.max(1, Math.ceil(n / 5));
    var xt = [{ x: x(0), text: '0' }];
    for (var h = every; h <= n; h += every) xt.push({ x: x(h), text: '+' + h });
    axisX(f, xt, unitCount(data.model, 2).replace(/^2 /, '') + ' into the holdout');
    svgEl('text', { x: 0, y: -10, 'font-size': 12, 'font-weight': 600 }, f.g, 'Cumulative purchases in the holdout');
    lines.forEach(function (l, k) {
      var pts = [[x(0), y(0)]].concat(l.values.map(function (v, i) { return [x(i + 1), y(v)]; }));
      var series = svgEl('g', { 'class': 'series', 'data-state': l.s[1] }, f.g);
      svgEl('path', { d: 'M' + pts.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join('L'),
        fill: 'none', stroke: l.s[2], 'stroke-width': 1.8, 'stroke-dasharray': l.s[3] }, series);
      l.values.forEach(function (v, i) {
        var dot = svgEl('circle', { cx: x(i + 1), cy: y(v), r: 2.6, fill: l.s[2] }, series);
        svgEl('title', null, dot, l.s[1] + ', by the end of ' + periods[i].period_start + "'s period: " + fmtNum(v, 3));
      });
      svgEl('text', { x: 4, y: 12 + 14 * k, 'font-size': 11, fill: l.s[2] }, f.g, l.s[1]);
    });
  }

  // ---------- frequency × recency ----------

  // Two heatmaps of the model's BTYD fit: expected purchases over the next period and P(alive),
  // by repeat purchases (rows) and the day of the last one (columns).
  function drawGrid(data) {
    var box = clear($('chart-grid'));
    var g = data.model.purchase_grid;
    if (!g) { emptyNote(box, 'The model has no BTYD fit.'); $('grid-caption').textContent = ''; return; }
    var nr = g.frequencies.length, nc = g.recencies.length;
    var cell = Math.max(14, Math.min(34, Math.floor((chartWidth(box, 1100) / 2 - 120) / nc)));
    [['expected_purchases', 'expected purchases, next ' + unitCount(data.model, 1).replace(/^1 /, '')],
      ['p_alive', 'P(alive)']].forEach(function (v) {
      var values = g[v[0]];
      var top = 0;
      values.forEach(function (r) { r.forEach(function (x) { if (isNum(x)) top = Math.max(top, x); }); });
      top = v[0] === 'p_alive' ? 1 : (top || 1);
      var f = makeFrame(box, 70 + nc * cell + 20, 30 + nr * cell + 44, { top: 24, right: 20, bottom: 44, left: 70 });
      f.svg.setAttribute('data-grid', v[0]);
      svgEl('text', { x: 0, y: -8, 'font-size': 12, 'font-weight': 600 }, f.g, v[1]);
      for (var i = 0; i < nr; i++) {
        var row = nr - 1 - i;  // the most frequent buyers on top
        svgEl('text', { x: -6, y: i * cell + cell / 2, dy: '0.32em', 'text-anchor': 'end', 'font-size': 10 }, f.g,
          String(g.frequencies[row]));
        for (var j = 0; j < nc; j++) {
          var x = values[row][j];
          var r = svgEl('rect', { x: j * cell, y: i * cell, width: cell - 1, height: cell - 1,
            fill: isNum(x) ? mix('#f7fbff', '#08306b', Math.sqrt(Math.max(0, Math.min(1, x / top)))) : '#eceff3' }, f.g);
          svgEl('title', null, r, g.frequencies[row] + ' repeat purchases, the last on day ' + g.recencies[j] + ': ' +
            (isNum(x) ? fmtNum(x, 3) : 'not possible'));
        }
      }
      for (var k = 0; k < nc; k += Math.max(1, Math.ceil(nc / 6))) {
        svgEl('text', { x: k * cell + cell / 2, y: nr * cell + 14, 'text-anchor': 'middle', 'font-size': 10 }, f.g,
          String(g.recencies[k]));
      }
      svgEl('text', { 'class': 'axis-label', x: nc * cell / 2, y: nr * cell + 32, 'text-anchor': 'middle' }, f.g,
        'day of the last purchase (after the first)');
      svgEl('text', { 'class': 'axis-label', transform: 'rotate(-90)', x: -nr * cell / 2, y: -48, 'text-anchor': 'middle' },
        f.g, 'repeat purchases');
    });
    $('grid-caption').textContent = 'Under the model\'s ' + (g.model === 'pareto_nbd' ? 'Pareto/NBD' : 'BG/NBD') +
      ' fit, a customer observed ' + fmtInt(g.t) + ' days (the model\'s history): its expected purchase days over the next ' +
      fmtInt(g.horizon_days) + ' days and its probability of still being a customer, by how often it bought and how ' +
      'recently. Frequent buyers who went quiet (the left of the top rows) are the ones to call.';
  }

  // ---------- diagnostics ----------

  function titleCase(key) { var s = String(key).replace(/_/g, ' '); return s.charAt(0).toUpperCase() + s.slice(1); }

  function diagCard(parent, title) {
    var d = el('div', { 'class': 'diag' }, parent);
    el('h3', null, d, title);
    return d;
  }

  function renderValue(card, value) {
    if (value === null || value === undefined) { el('p', { 'class': 'empty' }, card, 'not computed'); return; }
    if (Array.isArray(value)) {
      if (!value.length) { el('p', null, card, 'none'); return; }
      if (typeof value[0] === 'object' && value[0] !== null && !Array.isArray(value[0])) {
        var keys = Object.keys(value[0]);
        var table = el('table', { 'class': 'data' }, card);
        var head = el('tr', null, el('thead', null, table));
        keys.forEach(function (k) { el('th', null, head, titleCase(k)); });
        var body = el('tbody', null, table);
        value.slice(0, 50).forEach(function (row) {
          var tr = el('tr', null, body);
          keys.forEach(function (k) { el('td', { 'class': isNum(row[k]) ? 'num' : '' }, tr, scalar(row[k])); });
        });
        if (value.length > 50) el('p', { 'class': 'caption' }, card, '… and ' + (value.length - 50) + ' more');
        return;
      }
      el('p', null, card, value.map(scalar).join(', '));
      return;
    }
    if (typeof value === 'object') {
      var sentence = value.verdict || value.sentence || value.summary;
      if (sentence) el('p', { 'class': 'verdict' }, card, sentence);
      var dl = el('dl', null, card);
      Object.keys(value).forEach(function (k) {
        if (value[k] === sentence) return;
        var v = value[k];
        if (Array.isArray(v) && v.length && typeof v[0] === 'object' && v[0] !== null) {
          // A list of records (window scores, thin rows): a small table under the list.
          var sub = el('div', { 'class': 'diag-table' }, card);
          el('p', { 'class': 'caption' }, sub, titleCase(k));
          renderValue(sub, v);
          return;
        }
        el('dt', null, dl, k === 'p_value' ? 'p' : titleCase(k));
        el('dd', null, dl, Array.isArray(v) && !v.length ? 'none' : v !== null && typeof v === 'object' ? JSON.stringify(v) : k === 'p_value' ? fmtP(v) : scalar(v));
      });
      return;
    }
    el('p', null, card, scalar(value));
  }

  function scalar(v) {
    if (isNum(v)) return Number.isInteger(v) ? fmtInt(v) : Math.abs(v) >= 100 ? fmtNum(v, 1) : fmtNum(v, 3);
    if (v === null || v === undefined) return '–';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  function drawDiagnostics(data) {
    var box = clear($('diagnostics'));
    var diag = (data.transitions && data.transitions.diagnostics) || {};
    var names = Object.keys(diag);
    if (names.indexOf('time_homogeneity') < 0) names.unshift('time_homogeneity');
    names.forEach(function (name) {
      var titles = {
        time_homogeneity: 'Time-homogeneity of the moves (likelihood-ratio test)',
        order: 'First- vs second-order chain (likelihood-ratio test)',
        thin_rows: 'Rows with too few observations',
        recent_window: 'Recent periods only? (scored on the last period\'s moves)'
      };
      var title = titles[name] || titleCase(name);
      var card = diagCard(box, title);
      if (name === 'time_homogeneity' && !diag[name]) {
        el('p', { 'class': 'empty' }, card, 'Not computed: fewer than two periods of moves.');
        return;
      }
      renderValue(card, diag[name]);
    });
    var t = data.transitions;
    var card = diagCard(box, 'States with no observed move out');
    el('p', null, card, t.unobserved_origins && t.unobserved_origins.length ? t.unobserved_origins.join(', ') +
      ' (their rows follow the prior and borrowed purchase probabilities, not evidence)' : 'none: every row rests on observed moves');
    var s = data.model.spend;
    if (s) {
      var sc = diagCard(box, 'Spend regression (next-period spend)');
      var dl = el('dl', null, sc);
      [['model', (s.model || 'ols') + (s.selection ? (s.selection.requested === 'auto' ? ' (chosen on held-out moves)' : ' (as configured)') : '')],
        ['value basis', s.value_basis || 'revenue'],
        ['observations', fmtInt(s.observations)], ['R²', fmtNum(s.r_squared, 3)], ['RMSE', fmtNum(s.rmse, 1)],
        ['features', (s.features || []).length + (s.attributes && s.attributes.length ? ' (attributes: ' + s.attributes.join(', ') + ')' : '')]
      ].forEach(function (r) { el('dt', null, dl, r[0]); el('dd', null, dl, r[1]); });
    }
    var d = data.model.data;
    var dc = diagCard(box, 'Data');
    var ddl = el('dl', null, dc);
    [['rows read', fmtInt(d.rows)], ['rows skipped', fmtInt(d.rows_skipped)],
      ['rows after as-of (left out)', fmtInt(d.rows_after_as_of)], ['dates', d.first_date + ' to ' + d.last_date],
      ['data fingerprint', String(d.content_hash).substr(0, 16) + '…']
    ].forEach(function (r) { el('dt', null, ddl, r[0]); el('dd', null, ddl, r[1]); });
  }

  // ---------- the whole page ----------

  function render(data) {
    drawHeader(data);
    var views = [
      ['sizes', function () { drawSizes(data, lapsedHidden(data.model)); }],
      ['transitions', function () { drawTransitions(data); }],
      ['frequency', function () { drawFrequency(data); }],
      ['grid', function () { drawGrid(data); }],
      ['tracking', function () { drawTracking(data); }],
      ['concentration', function () { drawConcentration(data); }],
      ['churn', function () { drawChurn(data); }],
      ['at-risk', function () { drawAtRisk(data); }],
      ['backtest', function () { drawBacktest(data); }],
      ['diagnostics', function () { drawDiagnostics(data); }]
    ];
    views.forEach(function (v) {
      try { v[1](); } catch (e) {
        showBanner('Could not draw the ' + v[0] + ' view: ' + e.message);
        throw e;
      }
    });
    var foot = clear($('foot'));
    foot.textContent = data.mode === 'dashboard'
      ? 'Dashboard of kam serve (read-only), model ' + data.model.id + ', loaded ' +
        new Date().toISOString().substr(0, 19).replace('T', ' ') + ' UTC.'
      : 'Report of model ' + data.model.id + ' written by kam ' + data.model.kam_version +
        '; self-contained: the data and the code that draws it are in this file.';
    document.body.setAttribute('data-rendered', 'true');
  }

  function showBanner(text) {
    var b = $('banner');
    if (!text) { b.hidden = true; b.textContent = ''; return; }
    b.textContent = text;
    b.hidden = false;
  }

  // ---------- dashboard: data from the API ----------

  function ApiError(status, message) { this.status = status; this.message = message; }

  function apiKey() { try { return sessionStorage.getItem(KEY_STORAGE) || ''; } catch (e) { return ''; } }

  function api(path, body) {
    var headers = { Accept: 'application/json' };
    var key = apiKey();
    if (key) headers.Authorization = 'Bearer ' + key;
    var init = { headers: headers, cache: 'no-store' };
    if (body !== undefined) { init.method = 'POST'; headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        if (!r.ok) {
          var msg = json && json.error && json.error.message ? json.error.message : 'HTTP ' + r.status;
          throw new ApiError(r.status, msg);
        }
        return json;
      });
    });
  }

  function askForKey(message, isError) {
    $('auth').hidden = false;
    var m = $('auth-message');
    m.textContent = message;
    m.className = 'auth-message' + (isError ? ' error' : '');
    $('api-key').focus();
  }

  function loadDashboard() {
    var horizon = parseInt($('horizon').value, 10) || 4;
    showBanner('');
    $('model-line').textContent = 'Loading from ' + location.host + '…';
    $('forget-key').hidden = !apiKey();
    var customers = api('/v1/model/customers/summary?horizon=' + horizon).catch(function (e) {
      if (e.status === 404) return { missing: 'No per-customer data: ' + e.message + '.' };
      throw e;
    });
    return Promise.all([api('/v1/model'), api('/v1/model/transitions'), api('/v1/forecast', { horizon: horizon }), customers])
      .then(function (parts) {
        $('auth').hidden = true;
        var data = { mode: 'dashboard', model: parts[0], transitions: parts[1], forecast: parts[2], customers: parts[3] };
        window.kamData = data;
        render(data);
      })
      .catch(function (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          var why = e.status === 401
            ? (apiKey() ? 'The server refused this API key (401 unauthorized): ' : 'This server needs an API key (401 unauthorized): ')
            : 'This API key may not read the model (403 forbidden): ';
          askForKey(why + e.message, true);
          $('model-line').textContent = 'Not signed in.';
          return;
        }
        if (e instanceof ApiError && e.status === 503) {
          showBanner('The server has no model loaded yet (503): ' + e.message);
          return;
        }
        showBanner('Could not load the dashboard: ' + (e && e.message ? e.message : e));
        console.warn(e);
      });
  }

  function startDashboard() {
    $('controls').hidden = false;
    $('auth-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var key = $('api-key').value.trim();
      if (!key) { askForKey('Enter an API key with the read role.', true); return; }
      try { sessionStorage.setItem(KEY_STORAGE, key); } catch (e) { /* private mode: key lives until reload */ }
      $('api-key').value = '';
      loadDashboard();
    });
    $('reload').addEventListener('click', loadDashboard);
    $('horizon').addEventListener('change', loadDashboard);
    $('forget-key').addEventListener('click', function () {
      try { sessionStorage.removeItem(KEY_STORAGE); } catch (e) { /* nothing stored */ }
      location.reload();
    });
    if (document.body.getAttribute('data-auth') === 'required' && !apiKey()) {
      askForKey('This server needs an API key with the read role.', false);
      $('model-line').textContent = 'Not signed in.';
      return;
    }
    loadDashboard();
  }

  function start() {
    var embedded = $('kam-data');
    if (embedded) {
      var data = JSON.parse(embedded.textContent);
      data.mode = 'report';
      window.kamData = data;
      render(data);
    } else {
      startDashboard();
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();

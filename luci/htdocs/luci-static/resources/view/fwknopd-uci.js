'use strict';
'require view';

// The fwknopd-uci settings page, shown inside LuCI.
//
// The page is rendered on the router by the fwknopd-uci CGI that uhttpd
// serves at /cgi-bin/fwknopd-settings: same origin as LuCI, so no new port
// and nothing reachable from the WAN. This view only frames it: an <iframe>
// plus a hidden form that POSTs the LuCI session id to the page's /login,
// with the iframe as the form's target. The id so travels in a request body
// only, never in a URL (no history entry, no Referer, no access log line).
// The page checks the id with rpcd (`session access`, access group
// luci-app-fwknopd) and then keeps its own HttpOnly cookie.
//
// The page has its own Save and Save & Apply buttons, so the LuCI footer
// buttons are switched off (handleSave/handleSaveApply/handleReset = null).

var FRAME_NAME = 'fwknopd-settings';

// How many animation frames to wait for the form to be in the document.
var MAX_WAIT_FRAMES = 120;

function pageUrl(path) {
	return (L.env.cgi_base || '/cgi-bin') + '/fwknopd-settings' + path;
}

// Submit the login form once LuCI has put the view into the document; a
// form that is not connected cannot be submitted.
function submitWhenShown(form, framesLeft) {
	if (form.isConnected) {
		form.submit();
		return;
	}
	if (framesLeft > 0) {
		window.requestAnimationFrame(function() {
			submitWhenShown(form, framesLeft - 1);
		});
	}
}

// Grow the iframe to its content, so the page scrolls as one (the frame
// is same-origin, so its document can be measured).
function fitToContent(frame) {
	var doc;

	try {
		doc = frame.contentDocument;
	}
	catch (e) {
		return;
	}
	if (doc && doc.documentElement)
		frame.style.height = (doc.documentElement.scrollHeight + 16) + 'px';
}

return view.extend({
	render: function() {
		var sid = L.env.sessionid;

		if (!sid || !/^[0-9a-f]{32}$/.test(sid))
			return E('div', { 'class': 'alert-message warning' },
				_('No LuCI session: log in again to open the Firewall Knock settings.'));

		var frame = E('iframe', {
			'name': FRAME_NAME,
			'id': FRAME_NAME,
			'title': _('Firewall Knock (SPA) settings'),
			'src': 'about:blank',
			'style': 'display:block;width:100%;min-height:80vh;border:0'
		});

		frame.addEventListener('load', function() {
			fitToContent(frame);
		});

		var form = E('form', {
			'method': 'post',
			'action': pageUrl('/login'),
			'target': FRAME_NAME,
			'style': 'display:none'
		}, [
			E('input', { 'type': 'hidden', 'name': 'sessionid', 'value': sid })
		]);

		submitWhenShown(form, MAX_WAIT_FRAMES);

		// No <h2> here: the framed page has its own title bar.
		return E('div', { 'class': 'cbi-map' }, [ frame, form ]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});

// Passkey ceremonies for Earshot (WebAuthn). Loaded as a file: the CSP forbids inline script.
"use strict";

(function () {
  function b64uToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    o.user.id = b64uToBuf(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function requestOptions(o) {
    o.challenge = b64uToBuf(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return o;
  }
  function credentialJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: bufToB64u(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || null, response: {}
    };
    out.response.clientDataJSON = bufToB64u(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      out.response.userHandle = r.userHandle ? bufToB64u(r.userHandle) : null;
    }
    return out;
  }
  function post(url, csrf, body) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (csrf) { headers["X-CSRF-Token"] = csrf; }
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers,
                        body: JSON.stringify(body || {}) }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          if (res.headers.get("X-Reauth-Required")) {
            window.location.assign("/reauth?next=" + encodeURIComponent(window.location.pathname));
          }
          throw new Error(data.detail || ("request failed (" + res.status + ")"));
        }
        return data;
      });
    });
  }
  function showError(msg) {
    var el = document.getElementById("passkey-error");
    if (el) { el.textContent = msg; el.hidden = false; }
  }
  function register(button) {
    var csrf = button.getAttribute("data-csrf");
    button.disabled = true;
    post("/api/v1/webauthn/register/options", csrf).then(function (opts) {
      return navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) }).then(function (cred) {
        return post("/api/v1/webauthn/register/verify", csrf,
                    { ceremony: opts.ceremony, credential: credentialJSON(cred) });
      });
    }).then(function (data) {
      window.location.assign(data.next || "/");
    }).catch(function (err) {
      showError("Passkey not created: " + err.message);
      button.disabled = false;
    });
  }
  function login(button) {
    var csrf = button.getAttribute("data-csrf");
    button.disabled = true;
    post("/api/v1/webauthn/login/options", csrf).then(function (opts) {
      return navigator.credentials.get({ publicKey: requestOptions(opts.publicKey) }).then(function (cred) {
        return post("/api/v1/webauthn/login/verify", csrf,
                    { ceremony: opts.ceremony, credential: credentialJSON(cred) });
      });
    }).then(function (data) {
      window.location.assign(data.next || "/");
    }).catch(function (err) {
      showError("Passkey sign-in failed: " + err.message);
      button.disabled = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-webauthn]");
    for (var i = 0; i < buttons.length; i++) {
      (function (b) {
        if (!window.PublicKeyCredential) { b.hidden = true; return; }
        if (/^[0-9.]+$/.test(location.hostname) || location.hostname.indexOf(":") >= 0) {
          // WebAuthn needs a host name; an IP address cannot be a relying-party id.
          b.disabled = true;
          showError("Passkeys need a host name: open this page at " + location.protocol + "//localhost" +
                    (location.port ? ":" + location.port : "") + location.pathname + ".");
          return;
        }
        b.addEventListener("click", function () {
          if (b.getAttribute("data-webauthn") === "register") { register(b); } else { login(b); }
        });
      })(buttons[i]);
    }
  });
})();

// Card payment with Stripe.js: card data goes from the browser to Stripe only.
(function () {
  "use strict";
  var form = document.getElementById("card-payment");
  if (!form || typeof Stripe === "undefined") { return; }
  var data = form.dataset;
  var stripe = Stripe(data.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errors = document.getElementById("card-errors");
  var button = document.getElementById("pay-button");

  function fail(message) {
    errors.textContent = message || data.errorMessage;
    errors.hidden = false;
    button.disabled = false;
  }

  function finish() {
    // The server reads the outcome from Stripe; the browser's word is not taken.
    window.location.assign(data.returnUrl);
  }

  function authenticate() {
    // 3-D Secure for a payment that asks for it, then the outcome page either way.
    return stripe.confirmCardPayment(data.clientSecret).then(finish, finish);
  }

  function payWithStripe() {
    return stripe.confirmCardPayment(data.clientSecret, {payment_method: {card: card}})
      .then(function (result) {
        if (result.error && result.error.type === "validation_error") {
          fail(result.error.message);
          return;
        }
        finish();
      });
  }

  function payWithEmulator() {
    // The emulator's Stripe.js cannot attach a card to a PaymentIntent: register the
    // card there, and have the portal confirm the intent with the card's id.
    return stripe.createToken(card).then(function (result) {
      if (result.error || !result.token) {
        fail(result.error && result.error.message);
        return null;
      }
      return fetch(data.cardUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/x-www-form-urlencoded",
                  "X-CSRFToken": data.csrfToken},
        body: new URLSearchParams({card: result.token.card.id, token: result.token.id})
      }).then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { fail(); return null; }
          return body.status === "requires_action" ? authenticate() : finish();
        });
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) { return; }
    button.disabled = true;
    errors.hidden = true;
    var pay = data.emulated === "true" ? payWithEmulator : payWithStripe;
    pay().catch(function () { fail(); });
  });

  if (data.needsAction === "true") {
    button.disabled = true;
    authenticate();
  }
})();

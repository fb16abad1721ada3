// Card payment with Stripe.js: card data goes from the browser to Stripe only. Two places
// use it: the card page (#card-payment) and the quote page (.order-form[data-inline-card]),
// where the card is typed next to the order and paid as soon as the order is placed.
(function () {
  "use strict";
  if (typeof Stripe === "undefined") { return; }

  function cardPayment(data, errors, button) {
    var stripe = Stripe(data.publishableKey);
    var card = stripe.elements().create("card");
    card.mount("#card-element");
    var entered = false;
    card.on("change", function (event) {
      // Stripe says when the card is complete; the emulator's element says nothing.
      entered = event ? Boolean(event.complete) : Boolean(card.value && card.value.card &&
                                                          card.value.card.number.length >= 12);
    });

    function fail(message) {
      errors.textContent = message || data.errorMessage;
      errors.hidden = false;
      button.disabled = false;
    }

    function finish() {
      // The server reads the outcome from Stripe; the browser's word is not taken.
      window.location.assign(data.returnUrl);
    }

    function authenticate(clientSecret) {
      // 3-D Secure for a payment that asks for it, then the outcome page either way.
      return stripe.confirmCardPayment(clientSecret).then(finish, finish);
    }

    function payWithStripe(clientSecret) {
      return stripe.confirmCardPayment(clientSecret, {payment_method: {card: card}})
        .then(function (result) {
          if (result.error && result.error.type === "validation_error") {
            fail(result.error.message);
            return;
          }
          finish();
        });
    }

    function payWithEmulator(clientSecret) {
      // The emulator's Stripe.js cannot attach a card to a PaymentIntent: register the
      // card there (with the token it came from, so it can be saved for automatic
      // renewal), and have the portal confirm the intent with the card's id.
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
            return body.status === "requires_action" ? authenticate(clientSecret) : finish();
          });
        });
      });
    }

    return {
      entered: function () { return entered; },
      fail: fail,
      authenticate: authenticate,
      pay: function (clientSecret) {
        errors.hidden = true;
        button.disabled = true;
        var pay = data.emulated === "true" ? payWithEmulator : payWithStripe;
        return pay(clientSecret).catch(function () { fail(); });
      }
    };
  }

  var payPage = document.getElementById("card-payment");
  if (payPage) {
    var button = document.getElementById("pay-button");
    var payment = cardPayment(payPage.dataset, document.getElementById("card-errors"), button);
    payPage.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!button.disabled) { payment.pay(payPage.dataset.clientSecret); }
    });
    if (payPage.dataset.needsAction === "true") {
      button.disabled = true;
      payment.authenticate(payPage.dataset.clientSecret);
    }
  }

  var orderForm = document.querySelector(".order-form[data-inline-card]");
  if (orderForm) {
    var inline = document.getElementById("inline-card");
    var place = orderForm.querySelector("button[name=place]");
    var cards = orderForm.querySelectorAll(".method-group-card input[name=payment_method]");
    var inlinePayment = cardPayment(orderForm.dataset, document.getElementById("card-errors"),
                                    place);
    var cardChosen = function () {
      return Array.prototype.some.call(cards, function (input) { return input.checked; });
    };
    var showCard = function () { inline.hidden = !cardChosen(); };
    orderForm.addEventListener("change", showCard);
    showCard();

    var placeAsUsual = function () {
      // Without a card typed here (or when the order cannot be placed), the form goes
      // as it would without this script: the card page, or the page with its errors.
      var marker = document.createElement("input");
      marker.type = "hidden";
      marker.name = "place";
      marker.value = "1";
      orderForm.appendChild(marker);
      orderForm.submit();
    };

    orderForm.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (!submitter || submitter.name !== "place" || !cardChosen() || !inlinePayment.entered()) {
        return;
      }
      event.preventDefault();
      if (place.disabled) { return; }
      place.disabled = true;
      var body = new FormData(orderForm);
      body.append("place", "1");
      fetch(orderForm.action, {method: "POST", credentials: "same-origin", body: body,
                               headers: {"X-Card-Inline": "1"}})
        .then(function (response) {
          var json = (response.headers.get("Content-Type") || "").indexOf("json") >= 0;
          if (!response.ok || !json) { placeAsUsual(); return null; }
          return response.json().then(function (order) {
            if (order.status === "succeeded") { window.location.assign(order.next); return null; }
            if (order.status === "requires_action") {
              return inlinePayment.authenticate(order.client_secret);
            }
            return inlinePayment.pay(order.client_secret);
          });
        })
        .catch(function () { inlinePayment.fail(); });
    });
  }
})();

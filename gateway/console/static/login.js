// Sign in: the key goes once in a POST body; the answer sets an HttpOnly session cookie.
const form = document.getElementById('signin');
const input = document.getElementById('key');
const error = document.getElementById('signin-error');
input.focus();
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  error.textContent = '';
  const key = input.value.trim();
  if (key.length < 12) {
    error.textContent = 'A gateway key has at least 12 characters.';
    return;
  }
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    const response = await fetch('/ui/login', {
      method: 'POST', credentials: 'same-origin',
      headers: {'content-type': 'application/json'}, body: JSON.stringify({key}),
    });
    input.value = '';
    if (response.ok) {
      location.replace('/ui' + location.hash);
      return;
    }
    error.textContent = response.status === 401 ? 'That key is not valid here.' : `Sign-in failed (${response.status}).`;
  } catch (e) {
    error.textContent = 'The gateway did not answer.';
  } finally {
    button.disabled = false;
  }
});

// Runs the request body as the body of an async function(env) and answers its result as JSON.
const AsyncFunction = (async () => {}).constructor;

export default {
  async fetch(request, env) {
    const code = await request.text();
    const value = await new AsyncFunction("env", code)(env);
    return Response.json(value === undefined ? null : value);
  },
};

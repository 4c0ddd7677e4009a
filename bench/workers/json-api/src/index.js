// bench/hello.py's JSON API case: parse a JSON body (~2 KB), transform it, answer with Response.json.
export default {
  async fetch(request) {
    const order = await request.json();
    const lines = order.items.map((item) => ({
      sku: item.sku,
      name: item.name.toUpperCase(),
      total: Math.round(item.price * item.qty * 100) / 100,
      tags: item.tags.filter((t) => t !== "internal"),
    }));
    const total = lines.reduce((sum, line) => sum + line.total, 0);
    return Response.json({ id: order.id, customer: order.customer.name, count: lines.length, total, lines });
  },
};

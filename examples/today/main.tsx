/**
 * Today: a dashboard by another developer over the same `com.example.todos` table. It shows
 * what is due today or overdue, with the private notes (decrypted on this device with the key
 * the user unlocked here), lets the user tick things off, and counts the rest. Changes made in
 * any other app the user granted the table appear as they happen.
 */
import { useMutation, useQuery } from "@hearth/sdk/react";
import type { ReactNode } from "react";
import { start, TODOS, type Todo, today } from "../shared/shell.tsx";

function Today(): ReactNode {
  const day = today();
  const { data, error } = useQuery<Todo>(TODOS, {
    where: (t) => !t.done,
    orderBy: [{ column: "due", nullsFirst: false }, "title"],
  });
  const { update } = useMutation<Todo>(TODOS);
  if (error) return <p role="alert">{error.message}</p>;
  if (data === null) return <p className="muted">Loading…</p>;

  const due = data.filter((t) => t.due !== null && t.due <= day);
  const later = data.length - due.length;
  return (
    <main>
      <p className="date">
        {new Date().toLocaleDateString(undefined, { weekday: "long", month: "long", day: "numeric" })}
      </p>
      <section className="card" aria-label="Due today">
        <h2>
          Due today <span className="count">{due.length}</span>
        </h2>
        {due.length === 0 ? (
          <p className="muted">Nothing due. Enjoy the day.</p>
        ) : (
          <ul className="todos">
            {due.map((t) => (
              <li key={t.id} className="todo" data-id={t.id}>
                <label>
                  <input type="checkbox" checked={false} onChange={() => void update(t.id, { done: true })} />
                  <span className="title">{t.title}</span>
                </label>
                {t.due !== null && t.due < day && <span className="due overdue">overdue since {t.due}</span>}
                {t.notes && <p className="notes">{t.notes}</p>}
              </li>
            ))}
          </ul>
        )}
      </section>
      <p className="muted" data-testid="later">
        {later === 0 ? "Nothing else open." : `${later} more open later or without a date.`}
      </p>
    </main>
  );
}

void start(() => <Today />);

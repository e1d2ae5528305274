/**
 * Todos: add, edit, tick off and delete to-dos with private notes. Every read comes from the
 * device's replica and every write is optimistic: it works the same offline, and syncs later.
 */
import { useMutation, useQuery } from "@hearth/sdk/react";
import { type FormEvent, type ReactNode, useState } from "react";
import { start, TODOS, type Todo, today } from "../shared/shell.tsx";

function Todos(): ReactNode {
  const { data, error } = useQuery<Todo>(TODOS, { orderBy: [{ column: "done" }, { column: "created_at" }] });
  const { insert, error: writeError } = useMutation<Todo>(TODOS);

  const add = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const fields = new FormData(form);
    const title = String(fields.get("title") ?? "").trim();
    if (!title) return;
    const notes = String(fields.get("notes") ?? "").trim();
    void insert({
      id: crypto.randomUUID(),
      title,
      done: false,
      due: String(fields.get("due") ?? "") || null,
      notes: notes || null,
      created_at: new Date().toISOString(),
    });
    form.reset();
  };

  return (
    <main>
      <form className="card add" onSubmit={add} aria-label="Add a to-do">
        <label>
          New to-do
          <input name="title" required placeholder="Buy milk" />
        </label>
        <label>
          Due
          <input name="due" type="date" defaultValue={today()} />
        </label>
        <label>
          Private notes (encrypted)
          <textarea name="notes" rows={2} placeholder="Only you can read these" />
        </label>
        <button type="submit">Add</button>
      </form>
      {(error || writeError) && <p role="alert">{(error ?? writeError)?.message}</p>}
      {data === null ? (
        <p className="muted">Loading…</p>
      ) : data.length === 0 ? (
        <p className="muted">Nothing to do.</p>
      ) : (
        <ul className="todos">
          {data.map((t) => (
            <Item key={t.id} todo={t} />
          ))}
        </ul>
      )}
    </main>
  );
}

function Item({ todo }: { todo: Todo }): ReactNode {
  const { update, remove } = useMutation<Todo>(TODOS);
  const [editing, setEditing] = useState(false);

  const save = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const fields = new FormData(e.currentTarget);
    const title = String(fields.get("title") ?? "").trim();
    const notes = String(fields.get("notes") ?? "").trim();
    if (title) void update(todo.id, { title, notes: notes || null });
    setEditing(false);
  };

  if (editing) {
    return (
      <li className="todo">
        <form onSubmit={save} aria-label={`Edit ${todo.title}`}>
          <label>
            Title
            <input name="title" defaultValue={todo.title} required />
          </label>
          <label>
            Private notes
            <textarea name="notes" rows={2} defaultValue={todo.notes ?? ""} />
          </label>
          <button type="submit">Save</button>
          <button type="button" className="link" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      </li>
    );
  }
  return (
    <li className={todo.done ? "todo done" : "todo"} data-id={todo.id}>
      <label>
        <input
          type="checkbox"
          checked={todo.done}
          onChange={() => void update(todo.id, { done: !todo.done })}
        />
        <span className="title">{todo.title}</span>
      </label>
      {todo.due && <span className="due">{todo.due}</span>}
      {todo.notes && <p className="notes">{todo.notes}</p>}
      <button
        type="button"
        className="link"
        onClick={() => setEditing(true)}
        aria-label={`Edit ${todo.title}`}
      >
        Edit
      </button>
      <button
        type="button"
        className="link"
        onClick={() => void remove(todo.id)}
        aria-label={`Delete ${todo.title}`}
      >
        Delete
      </button>
    </li>
  );
}

void start(() => <Todos />);

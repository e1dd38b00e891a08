// An input with suggestions from the server (ARIA combobox pattern):
// arrows move, Enter picks, Escape closes.

import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";

export function Combobox({
  label,
  value,
  onChange,
  onPick,
  suggest,
  placeholder,
  queryKey,
  id: givenId,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  onPick: (value: string) => void;
  suggest: (text: string, signal: AbortSignal) => Promise<string[]>;
  placeholder?: string;
  queryKey: string;
  id?: string;
}) {
  const auto = useId();
  const id = givenId ?? auto;
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const [text, setText] = useState(value);
  const [debounced, setDebounced] = useState(value);
  useEffect(() => setText(value), [value]);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(text), 150);
    return () => clearTimeout(timer);
  }, [text]);
  const options = useQuery({
    queryKey: ["suggest", queryKey, debounced],
    queryFn: ({ signal }) => suggest(debounced, signal),
    enabled: open,
    staleTime: 30_000,
  });
  const items = options.data ?? [];
  const pick = (v: string) => {
    setText(v);
    onPick(v);
    setOpen(false);
    setActive(-1);
  };
  return (
    <div className="combobox">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        role="combobox"
        aria-expanded={open && items.length > 0}
        aria-controls={`${id}-list`}
        aria-autocomplete="list"
        aria-activedescendant={active >= 0 ? `${id}-opt-${active}` : undefined}
        autoComplete="off"
        placeholder={placeholder}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          onChange(e.target.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setOpen(true);
            setActive((a) => Math.min(items.length - 1, a + 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => Math.max(-1, a - 1));
          } else if (e.key === "Enter") {
            e.preventDefault();
            pick(active >= 0 && items[active] ? items[active] : text);
          } else if (e.key === "Escape") {
            setOpen(false);
          }
        }}
      />
      {open && items.length > 0 && (
        <ul id={`${id}-list`} role="listbox" className="listbox" aria-label={`${label} suggestions`}>
          {items.map((item, i) => (
            <li
              key={item}
              id={`${id}-opt-${i}`}
              role="option"
              aria-selected={i === active}
              className={i === active ? "active" : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(item);
              }}
            >
              {item}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

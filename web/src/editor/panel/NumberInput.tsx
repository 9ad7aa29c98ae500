// A number input that lets people type freely ("", "0.", "1e") and reports numbers.
import { type InputHTMLAttributes, useEffect, useState } from "react";

type Props = Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange" | "type"> & {
  value: number | undefined;
  /** A number, or undefined when the text is empty. Unparsable text reports nothing. */
  onValue: (value: number | undefined) => void;
};

export function NumberInput({ value, onValue, ...rest }: Props) {
  const [text, setText] = useState(value === undefined ? "" : String(value));
  useEffect(() => {
    setText((current) => (current.trim() !== "" && Number(current) === value ? current : value === undefined ? "" : String(value)));
  }, [value]);
  return (
    <input
      {...rest}
      type="number"
      value={text}
      onChange={(event) => {
        const next = event.target.value;
        setText(next);
        if (next.trim() === "") onValue(undefined);
        else if (Number.isFinite(Number(next))) onValue(Number(next));
      }}
    />
  );
}

// A domain's name, as a config's `name=`, `vpl011 up --name` and the daemon's records all accept it: 1-64 letters,
// digits, "_", "." or "-", starting with a letter or digit (so it is never an option, a hidden file or a path).
export const DOMAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

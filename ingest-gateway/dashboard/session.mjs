// Who is logged in, and which of their projects the dashboard shows. The session itself is an
// HttpOnly cookie this code never sees; what it keeps is what login and GET /api/auth/me say:
// the email, the projects, and the CSRF token that every unsafe request must echo. The chosen
// project is remembered for the tab (sessionStorage), so a reload stays on it.

const PROJECT_KEY = 'leadflow.project';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const session = { email: null, projects: [], csrfToken: null, project: null };

// The remembered project when it is still one of the user's, else their first.
export function pickProject(projects, remembered) {
  return projects.includes(remembered) ? remembered : (projects[0] ?? null);
}

export function startSession({ email, projects, csrfToken }, storage = globalThis.sessionStorage) {
  Object.assign(session, { email, projects, csrfToken });
  session.project = pickProject(projects, storage?.getItem(PROJECT_KEY));
}

export function chooseProject(project, storage = globalThis.sessionStorage) {
  if (!session.projects.includes(project)) throw new Error(`not one of your projects: ${project}`);
  session.project = project;
  storage?.setItem(PROJECT_KEY, project);
}

export function endSession() {
  Object.assign(session, { email: null, projects: [], csrfToken: null, project: null });
}

// The headers every API call carries: the project, and on unsafe methods the CSRF token.
export function sessionHeaders(method) {
  const headers = {};
  if (session.project) headers['x-leadflow-project'] = session.project;
  if (session.csrfToken && UNSAFE.has(method)) headers['x-csrf-token'] = session.csrfToken;
  return headers;
}

// EventSource sends no headers of ours: the gateway takes the stream's project from the query.
export function streamUrl() {
  return session.project ? `/api/stream?project=${encodeURIComponent(session.project)}` : '/api/stream';
}

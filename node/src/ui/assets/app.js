// Hearth web interface: a small single-page script over the node's JSON API.
//
// Contract with the node (node/src/ui): the page is served only with a
// session cookie; every request here goes to /v1/... with that cookie and
// the X-Hearth-UI header (required on changes); /v1/events pushes a "pulse"
// (a summary of everything at a glance) whenever it changes, and the page
// then refetches what it shows. Text from other nodes (names, file names,
// bank labels) is only ever put in the page with textContent.
'use strict';

(() => {
  // ---------------------------------------------------------------- i18n
  // Every string of the page in English and French, side by side, so that
  // none can lack its translation.
  const STRINGS = {
    'nav.overview': ['Overview', 'Accueil'],
    'nav.contacts': ['Contacts', 'Contacts'],
    'nav.shares': ['Folders', 'Dossiers'],
    'nav.bank': ['Bank', 'Banque'],
    'nav.backups': ['Backups', 'Sauvegardes'],
    'lang.other': ['Français', 'English'],
    'logout': ['Log out', 'Déconnexion'],
    'lang.short': ['FR', 'EN'],
    'live.connecting': ['connecting…', 'connexion…'],
    'live.live': ['live', 'en direct'],
    'live.lost': ['reconnecting…', 'reconnexion…'],
    'working': ['Working…', 'En cours…'],
    'done': ['Done.', 'Fait.'],
    'never': ['never', 'jamais'],
    'yes': ['yes', 'oui'],
    'no': ['no', 'non'],
    'you': ['you', 'vous'],
    'remove': ['Remove', 'Retirer'],
    'confirm.remove': ['Remove {name}?', 'Retirer {name} ?'],
    'err.session': ['Your session has ended: run `hearth ui` again.', 'Votre session est terminée : relancez `hearth ui`.'],
    'online': ['online', 'en ligne'],
    'offline': ['offline', 'hors ligne'],
    'last_seen': ['last seen {when}', 'vu {when}'],
    'of': ['{a} of {b}', '{a} sur {b}'],
    'ov.title': ['Everything at a glance', 'Tout d’un coup d’œil'],
    'ov.contacts': ['{n} of {total} contacts online', 'En ligne : {n} sur {total}'],
    'ov.no_contacts': ['No contacts yet: invite someone.', 'Aucun contact : invitez quelqu’un.'],
    'ov.shares': ['Shared folders', 'Dossiers partagés'],
    'ov.no_shares': ['No shared folder yet.', 'Aucun dossier partagé.'],
    'ov.bank': ['Bank accounts', 'Comptes bancaires'],
    'ov.no_bank': ['No account yet.', 'Aucun compte.'],
    'ov.backups': ['Backups', 'Sauvegardes'],
    'ov.last_backup': ['Last backup: {when}', 'Dernière sauvegarde : {when}'],
    'ov.no_backup': ['No backup yet.', 'Aucune sauvegarde.'],
    'ov.manage': ['Open', 'Ouvrir'],
    'sync.in_sync': ['in sync', 'à jour'],
    'sync.receiving': ['receiving {n} files ({pct} %)', 'réception de {n} fichiers ({pct} %)'],
    'sync.pending': ['invitation to answer', 'invitation à accepter'],
    'sync.waiting': ['waiting for the first sync', 'en attente de la première synchro'],
    'sync.state': ['{state}', '{state}'],
    'sync.conflicts': ['{n} conflicts', '{n} conflits'],
    'sync.conflicts.one': ['1 conflict', '1 conflit'],
    'ct.title': ['Contacts', 'Contacts'],
    'ct.invite': ['Invite someone', 'Inviter quelqu’un'],
    'ct.invite_help': ['Create a one-time invitation and give it to the other person (by message, on paper…). It works once, for 24 hours.', 'Créez une invitation à usage unique et donnez-la à l’autre personne (par message, sur papier…). Elle sert une fois, pendant 24 heures.'],
    'ct.invite_create': ['Create an invitation', 'Créer une invitation'],
    'ct.invite_valid': ['Valid until {when}. Works once.', 'Valable jusqu’au {when}. Sert une fois.'],
    'ct.copy': ['Copy', 'Copier'],
    'ct.copied': ['Copied.', 'Copié.'],
    'ct.join': ['Join with an invitation', 'Rejoindre avec une invitation'],
    'ct.join_help': ['Paste the invitation someone gave you.', 'Collez l’invitation qu’on vous a donnée.'],
    'ct.join_token': ['Invitation', 'Invitation'],
    'ct.join_name': ['Name to give them (optional)', 'Nom à lui donner (facultatif)'],
    'ct.join_submit': ['Join', 'Rejoindre'],
    'ct.joined': ['Paired with {name}.', 'Associé à {name}.'],
    'ct.list': ['Your contacts', 'Vos contacts'],
    'ct.none': ['No contacts yet.', 'Aucun contact.'],
    'ct.invited': ['used your invitation', 'a utilisé votre invitation'],
    'ct.joined_them': ['you used theirs', 'vous avez utilisé la sienne'],
    'ct.refused': ['they no longer know you', 'ne vous connaît plus'],
    'ct.invitations': ['Invitations you made', 'Vos invitations'],
    'ct.inv_none': ['None yet.', 'Aucune.'],
    'ct.inv.open': ['open', 'ouverte'],
    'ct.inv.used': ['used by {name}', 'utilisée par {name}'],
    'ct.inv.expired': ['expired', 'expirée'],
    'ct.this_node': ['This node', 'Ce nœud'],
    'sh.title': ['Shared folders', 'Dossiers partagés'],
    'sh.create': ['Share a folder', 'Partager un dossier'],
    'sh.create_help': ['A folder on this node’s machine. Members get a copy and edits flow both ways.', 'Un dossier sur la machine de ce nœud. Les membres en ont une copie et les modifications circulent dans les deux sens.'],
    'sh.path': ['Folder path', 'Chemin du dossier'],
    'sh.name': ['Name (optional)', 'Nom (facultatif)'],
    'sh.create_submit': ['Share', 'Partager'],
    'sh.created': ['Sharing {name}.', '{name} est partagé.'],
    'sh.none': ['No shared folder yet.', 'Aucun dossier partagé.'],
    'sh.accept_path': ['Where to put it (a new or empty folder)', 'Où le mettre (un dossier nouveau ou vide)'],
    'sh.accept': ['Accept', 'Accepter'],
    'sh.decline': ['Decline', 'Refuser'],
    'sh.invited_by': ['Invitation to {name}', 'Invitation à {name}'],
    'sh.back': ['← All folders', '← Tous les dossiers'],
    'sh.sync': ['Sync', 'Synchronisation'],
    'sh.figures': ['{files} files, {folders} folders, {size}', '{files} fichiers, {folders} dossiers, {size}'],
    'sh.pending_files': ['{n} files still coming ({size})', '{n} fichiers encore en route ({size})'],
    'sh.pending_files.one': ['1 file still coming ({size})', '1 fichier encore en route ({size})'],
    'sh.rejected': ['{n} changes refused (a member without the right to write)', '{n} modifications refusées (un membre sans droit d’écriture)'],
    'sh.not_shared': ['Your local edits that are not shared (you are read-only):', 'Vos modifications locales non partagées (vous êtes en lecture seule) :'],
    'sh.members': ['Members', 'Membres'],
    'sh.pending_inv': ['Invited, no answer yet: {names}', 'Invités, sans réponse : {names}'],
    'sh.invite': ['Invite a contact', 'Inviter un contact'],
    'sh.read_only': ['read-only', 'lecture seule'],
    'sh.invite_submit': ['Invite', 'Inviter'],
    'sh.invited': ['Invited {name}.', '{name} est invité.'],
    'sh.no_contact': ['Every contact is a member already.', 'Tous vos contacts sont déjà membres.'],
    'sh.conflicts': ['Conflicts', 'Conflits'],
    'sh.no_conflicts': ['No conflict.', 'Aucun conflit.'],
    'sh.conflict_help': ['Two members changed the same file at the same time. Both versions are in the folder; keep one by deleting the other.', 'Deux membres ont modifié le même fichier en même temps. Les deux versions sont dans le dossier ; gardez-en une en supprimant l’autre.'],
    'sh.kept': ['Kept at its place', 'Gardée à sa place'],
    'sh.copy': ['Conflict copy', 'Copie en conflit'],
    'sh.files': ['Files', 'Fichiers'],
    'sh.no_files': ['The folder is empty.', 'Le dossier est vide.'],
    'sh.truncated': ['The first {n} of {total} entries.', 'Les {n} premières entrées sur {total}.'],
    'sh.pending': ['coming', 'en route'],
    'sh.trash': ['Trash', 'Corbeille'],
    'sh.no_trash': ['Nothing deleted.', 'Rien de supprimé.'],
    'sh.restore': ['Restore', 'Restaurer'],
    'sh.restored': ['Restored {path}.', '{path} est restauré.'],
    'sh.by': ['by {who}, {when}', 'par {who}, {when}'],
    'sh.role.owner': ['owner', 'propriétaire'],
    'sh.role.read-write': ['can edit', 'peut modifier'],
    'sh.role.read-only': ['read-only', 'lecture seule'],
    'sh.state.active': ['active', 'actif'],
    'sh.state.pending': ['invitation', 'invitation'],
    'sh.state.declined': ['declined', 'refusé'],
    'sh.state.left': ['left', 'quitté'],
    'sh.state.removed': ['removed', 'retiré'],
    'sh.role_changed': ['Role changed.', 'Rôle modifié.'],
    'sh.leave': ['Leave this folder', 'Quitter ce dossier'],
    'sh.confirm_leave': ['Stop taking part in {name}? Your files stay on disk.', 'Ne plus participer à {name} ? Vos fichiers restent sur le disque.'],
    'bk.title': ['Bank', 'Banque'],
    'bk.accounts': ['Accounts', 'Comptes'],
    'bk.none': ['No account yet: import a statement, or ask a relative to show you theirs.', 'Aucun compte : importez un relevé, ou demandez à un proche de vous montrer le sien.'],
    'bk.mine': ['my account', 'mon compte'],
    'bk.from': ['shown by {name}', 'montré par {name}'],
    'bk.ops': ['{n} operations', '{n} opérations'],
    'bk.ops.one': ['1 operation', '1 opération'],
    'bk.revoked': ['{name} stopped sharing this account.', '{name} ne partage plus ce compte.'],
    'bk.waiting': ['Waiting for the first operations…', 'En attente des premières opérations…'],
    'bk.chart': ['Balance over time', 'Solde dans le temps'],
    'bk.no_ops': ['No operation yet.', 'Aucune opération.'],
    'bk.operations': ['Operations', 'Opérations'],
    'bk.show_all': ['Show all {n}', 'Tout afficher ({n})'],
    'bk.share': ['Show this account to a relative (read-only)', 'Montrer ce compte à un proche (lecture seule)'],
    'bk.contact': ['Contact', 'Contact'],
    'bk.since': ['From (optional)', 'À partir du (facultatif)'],
    'bk.share_submit': ['Show', 'Montrer'],
    'bk.shared': ['Shown to {name}.', 'Montré à {name}.'],
    'bk.shown_to': ['Shown to: ', 'Montré à : '],
    'bk.unshare': ['Stop', 'Arrêter'],
    'bk.confirm_unshare': ['Stop showing this account to {name}? Their node drops its copy.', 'Ne plus montrer ce compte à {name} ? Son nœud efface sa copie.'],
    'bk.alerts': ['Alerts', 'Alertes'],
    'bk.no_alerts': ['No alert raised.', 'Aucune alerte.'],
    'al.large_debit': ['{on}: large debit of {amount} ({label})', '{on} : gros débit de {amount} ({label})'],
    'al.foreign': ['{on}: debit in {foreign} of {amount} ({label})', '{on} : débit en {foreign} de {amount} ({label})'],
    'al.new_payee': ['{on}: new payee “{label}”, {amount}', '{on} : nouveau bénéficiaire « {label} », {amount}'],
    'al.busy_day': ['{on}: {count} operations in one day (more than {limit})', '{on} : {count} opérations dans la journée (plus de {limit})'],
    'al.low_balance': ['{on}: the balance fell to {balance} (below {threshold})', '{on} : le solde est tombé à {balance} (sous {threshold})'],
    'al.low_balance_hidden': ['{on}: the balance fell below the threshold', '{on} : le solde est passé sous le seuil'],
    'al.an_amount': ['an amount', 'un montant'],
    'bk.rules': ['Rules', 'Règles'],
    'bk.no_rules': ['No rule yet.', 'Aucune règle.'],
    'bk.add_rule': ['Add a rule', 'Ajouter une règle'],
    'bk.on': ['On', 'Sur'],
    'bk.rule': ['Rule', 'Règle'],
    'bk.value': ['Amount or count', 'Montant ou nombre'],
    'bk.hide': ['hide amounts', 'masquer les montants'],
    'bk.rule_submit': ['Add', 'Ajouter'],
    'bk.rule_from': ['Watch from (default today)', 'Surveiller à partir du (défaut : aujourd’hui)'],
    'bk.rule_added': ['Rule added.', 'Règle ajoutée.'],
    'bk.rule.large-debit': ['large debit over', 'gros débit au-delà de'],
    'bk.rule.low-balance': ['balance below', 'solde sous'],
    'bk.rule.new-payee': ['new payee', 'nouveau bénéficiaire'],
    'bk.rule.busy-day': ['busy day (operations)', 'journée chargée (opérations)'],
    'bk.rule.foreign': ['foreign currency', 'devise étrangère'],
    'bk.import': ['Import a statement', 'Importer un relevé'],
    'bk.import_help': ['OFX/QFX, camt.053, CSV or Cozy JSON. Operations already imported are skipped.', 'OFX/QFX, camt.053, CSV ou JSON Cozy. Les opérations déjà importées sont ignorées.'],
    'bk.file': ['Statement file', 'Fichier du relevé'],
    'bk.account': ['Account name (CSV, or a new account)', 'Nom du compte (CSV, ou nouveau compte)'],
    'bk.format': ['Format', 'Format'],
    'bk.auto': ['detect', 'détecter'],
    'bk.import_submit': ['Import', 'Importer'],
    'bk.imported': ['{name}: {added} added, {dup} already known.', '{name} : {added} ajoutées, {dup} déjà connues.'],
    'bk.no_file': ['Choose a file first.', 'Choisissez d’abord un fichier.'],
    'bk.balance_on': ['on {day}', 'au {day}'],
    'bu.title': ['Backups', 'Sauvegardes'],
    'bu.restorable_yes': ['Restorable now: yes', 'Restaurable maintenant : oui'],
    'bu.restorable_no': ['Restorable now: no', 'Restaurable maintenant : non'],
    'bu.detail': ['{reachable} of {hosts} friends reachable, {k} needed', '{reachable} amis joignables sur {hosts}, {k} nécessaires'],
    'bu.no_backup': ['no backup yet', 'aucune sauvegarde'],
    'bu.last': ['Last backup {when}: {files} files, {size}', 'Dernière sauvegarde {when} : {files} fichiers, {size}'],
    'bu.run': ['Back up now', 'Sauvegarder maintenant'],
    'bu.ran': ['Backed up {files} files.', '{files} fichiers sauvegardés.'],
    'bu.phase.idle': ['idle', 'au repos'],
    'bu.phase.scanning': ['looking at files', 'examen des fichiers'],
    'bu.phase.backing up': ['backing up', 'sauvegarde'],
    'bu.phase.replicating': ['saving the catalog with friends', 'enregistrement du catalogue chez les amis'],
    'bu.phase.restoring': ['restoring', 'restauration'],
    'bu.progress': ['{done} of {total} files, {bytes} of {tbytes}, {up} sent', '{done} fichiers sur {total}, {bytes} sur {tbytes}, {up} envoyés'],
    'bu.friends': ['Friends who keep my backup', 'Amis qui gardent ma sauvegarde'],
    'bu.no_friends': ['No friend keeps your backup yet.', 'Aucun ami ne garde encore votre sauvegarde.'],
    'bu.holds': ['holds {n} pieces ({size})', 'garde {n} morceaux ({size})'],
    'bu.quota': ['grants {size}', 'accorde {size}'],
    'bu.audit': ['checked {when}', 'contrôlé {when}'],
    'bu.audit_ok': ['passed', 'réussi'],
    'bu.audit_bad': ['failed', 'échoué'],
    'bu.audit_none': ['never checked', 'jamais contrôlé'],
    'bu.audit_now': ['Check friends now', 'Contrôler maintenant'],
    'bu.audited': ['Checked.', 'Contrôlé.'],
    'bu.add_friend': ['Ask a contact to keep my backup', 'Demander à un contact de garder ma sauvegarde'],
    'bu.offer': ['Space I offer in return', 'Espace offert en retour'],
    'bu.ask': ['Ask', 'Demander'],
    'bu.asked': ['Asked {name}.', 'Demande envoyée à {name}.'],
    'bu.state.asked': ['asked', 'demandé'],
    'bu.state.accepted': ['accepted', 'accepté'],
    'bu.state.declined': ['declined', 'refusé'],
    'bu.state.pending': ['asks you', 'vous demande'],
    'bu.hosting': ['Backups I keep for others', 'Sauvegardes que je garde pour d’autres'],
    'bu.no_hosting': ['Nobody asked you.', 'Personne ne vous l’a demandé.'],
    'bu.used': ['{used} of {quota} used', '{used} utilisés sur {quota}'],
    'bu.grant': ['Space to grant', 'Espace accordé'],
    'bu.accept': ['Accept', 'Accepter'],
    'bu.decline': ['Decline', 'Refuser'],
    'bu.answered': ['Answered {name}.', 'Réponse envoyée à {name}.'],
    'bu.paths': ['What is backed up', 'Ce qui est sauvegardé'],
    'bu.no_paths': ['Only the node’s own state (contacts, shares, bank). Add folders below.', 'Seulement l’état du nœud (contacts, dossiers, banque). Ajoutez des dossiers ci-dessous.'],
    'bu.add_path': ['Folder to back up', 'Dossier à sauvegarder'],
    'bu.add': ['Add', 'Ajouter'],
    'bu.snapshots': ['Snapshots and restore', 'Instantanés et restauration'],
    'bu.no_snapshots': ['No snapshot yet.', 'Aucun instantané.'],
    'bu.restore_to': ['Restore into (a folder)', 'Restaurer dans (un dossier)'],
    'bu.restore_path': ['Only this path (optional)', 'Seulement ce chemin (facultatif)'],
    'bu.snapshot': ['Snapshot', 'Instantané'],
    'bu.latest': ['latest', 'le plus récent'],
    'bu.restore': ['Restore', 'Restaurer'],
    'bu.snap_line': ['{n} files, {size}', '{n} fichiers, {size}'],
    'bu.snap_line.one': ['1 file, {size}', '1 fichier, {size}'],
    'bu.restored': ['Restored {files} files.', '{files} fichiers restaurés.'],
    'bu.key': ['Recovery key', 'Clé de récupération'],
    'bu.key_help': ['If this machine dies, a fresh install plus this key brings everything back from your friends. Write it on paper and keep it safe.', 'Si cette machine meurt, une installation neuve et cette clé ramènent tout depuis vos amis. Écrivez-la sur papier et gardez-la en lieu sûr.'],
    'bu.key_show': ['Show my recovery key', 'Afficher ma clé de récupération'],
    'bu.key_hide': ['I wrote it down — hide it', 'Je l’ai notée — la masquer'],
    'bu.pass': ['Or keep it with friends, locked by a passphrase', 'Ou la confier à vos amis, verrouillée par une phrase secrète'],
    'bu.pass_1': ['Passphrase', 'Phrase secrète'],
    'bu.pass_2': ['Same passphrase again', 'La même, encore'],
    'bu.pass_submit': ['Store', 'Confier'],
    'bu.pass_mismatch': ['The two passphrases differ.', 'Les deux phrases diffèrent.'],
    'bu.pass_done': ['Stored with {n} friends.', 'Confiée à {n} amis.'],
    'bu.split': ['Or split it among friends', 'Ou la partager entre amis'],
    'bu.threshold': ['Pieces needed', 'Morceaux nécessaires'],
    'bu.split_submit': ['Split', 'Partager'],
    'bu.split_done': ['Given to {names}.', 'Donnée à {names}.'],
    'bu.pick_friends': ['Pick at least two friends.', 'Choisissez au moins deux amis.'],
    'size.bad': ['{text} is not a size (for example 10G or 500M).', '{text} n’est pas une taille (par exemple 10G ou 500M).'],
  };
  const LANGS = ['en', 'fr'];
  let lang = localStorage.getItem('hearth.lang') || (document.documentElement.lang === 'fr' ? 'fr' : 'en');

  function t(key, vars) {
    // A count of one has its own sentence where one is given (`KEY.one`).
    const entry = (vars && vars.n === 1 && STRINGS[key + '.one']) || STRINGS[key];
    let s = entry ? entry[Math.max(0, LANGS.indexOf(lang))] : key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined || vars[k] === null ? '' : String(vars[k])));
    return s;
  }
  const locale = () => (lang === 'fr' ? 'fr-FR' : 'en-GB');

  // ---------------------------------------------------------------- DOM
  const BOOL_PROPS = new Set(['disabled', 'checked', 'selected', 'readOnly', 'required', 'multiple']);

  /** Builds an element; strings become text nodes, null/false are skipped. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }
  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'class') el.setAttribute('class', v);
      // Through the CSSOM: the page's CSP refuses style attributes.
      else if (k === 'style') el.style.cssText = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (BOOL_PROPS.has(k)) el[k] = !!v;
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    append(el, children);
    return el;
  }
  /** Re-renders `el` from `data` only when the data changed (keeps open inputs alive). */
  function update(el, data, build) {
    const key = JSON.stringify([lang, data]);
    if (el._key === key) return;
    el._key = key;
    el.replaceChildren(...[build(data)].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }
  const card = (attrs, title, ...children) => h('section', { class: 'card', ...attrs }, title ? h('h2', { text: title }) : null, ...children);
  const pill = (text, kind) => h('span', { class: 'pill' + (kind ? ' ' + kind : ''), text });
  const dot = (on) => h('span', { class: 'dot' + (on ? ' on' : ''), title: on ? t('online') : t('offline') });
  const empty = (text) => h('p', { class: 'empty', text });
  const field = (label, input) => h('label', {}, label, input);
  const option = (value, text, selected) => h('option', { value, text, selected });

  function toast(text, bad) {
    // Kept for whoever looks into a problem (the browser tests print them).
    if (bad) (window.hearthProblems = window.hearthProblems || []).push(text);
    const el = document.getElementById('toast');
    el.textContent = text;
    el.className = 'toast show' + (bad ? ' bad' : '');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.className = 'toast'; el.textContent = ''; }, 3500);
  }

  /** A form whose submit runs `handler(form)`; its result or error shows below it. */
  function form(id, handler, ...children) {
    const msg = h('div', { class: 'form-msg', role: 'status' });
    const f = h('form', { id, novalidate: true }, ...children, msg);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const buttons = [...f.querySelectorAll('button')];
      buttons.forEach((b) => { b.disabled = true; });
      msg.className = 'form-msg';
      msg.textContent = t('working');
      try {
        const done = await handler(f, ev.submitter);
        msg.className = 'form-msg ok';
        msg.textContent = done || t('done');
        schedule();
      } catch (e) {
        msg.className = 'form-msg bad';
        msg.textContent = e.message;
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
    return f;
  }
  const val = (f, name) => f.elements.namedItem(name).value.trim();

  /** A button that runs `fn` and reports through the toast. */
  function action(label, fn, attrs) {
    const b = h('button', { type: 'button', text: label, ...attrs });
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const done = await fn();
        if (done) toast(done);
        schedule();
      } catch (e) {
        toast(e.message, true);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  }

  // ---------------------------------------------------------------- API
  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { 'X-Hearth-UI': '1' } };
    if (body instanceof ArrayBuffer) {
      init.body = body;
      init.headers['Content-Type'] = 'application/octet-stream';
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      // The session ended: the page itself now answers with the login help.
      location.reload();
      throw new Error(t('err.session'));
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!r.ok) throw new Error((data && data.error) || 'HTTP ' + r.status);
    return data;
  }
  const enc = encodeURIComponent;
  const backup = (op, extra) => api('POST', '/v1/backup', { op, ...(extra || {}) });

  // ---------------------------------------------------------------- formatting
  function fmtBytes(n) {
    n = Number(n) || 0;
    const units = lang === 'fr' ? ['o', 'Kio', 'Mio', 'Gio', 'Tio'] : ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: u ? 1 : 0 }).format(n) + '\u00a0' + units[u];
  }
  function fmtMoney(text, currency) {
    if (text === null || text === undefined) return '—';
    try {
      return new Intl.NumberFormat(locale(), { style: 'currency', currency: currency || 'EUR' }).format(Number(text));
    } catch (_) {
      return text + ' ' + (currency || '');
    }
  }
  // An alert in the page's language, from its facts (`detail`); alerts
  // recorded before the node kept them show the node's English sentence.
  function alertText(n) {
    const d = n.detail;
    if (!d) return n.message;
    const money = (v) => (v === null || v === undefined ? t('al.an_amount') : fmtMoney(v, d.currency));
    const vars = { on: n.on, label: d.label, foreign: d.foreign, count: d.count, limit: d.limit,
      amount: money(d.amount), balance: money(d.balance), threshold: money(d.threshold) };
    if (d.kind === 'low_balance' && (d.balance === null || d.balance === undefined)) return t('al.low_balance_hidden', vars);
    return STRINGS['al.' + d.kind] ? t('al.' + d.kind, vars) : n.message;
  }
  function fmtDay(day) {
    if (!day) return '';
    const d = new Date(day + 'T12:00:00Z');
    return isNaN(d) ? day : new Intl.DateTimeFormat(locale(), { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(d);
  }
  /** Unix seconds or RFC 3339 text, as a date and time. */
  function fmtTime(v) {
    if (v === null || v === undefined || v === '') return t('never');
    const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
    return isNaN(d) ? String(v) : new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }
  function ago(unix) {
    if (!unix) return t('never');
    const secs = Math.round(unix - Date.now() / 1000);
    const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
    const abs = Math.abs(secs);
    if (abs < 60) return rtf.format(secs, 'second');
    if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
    if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
    return rtf.format(Math.round(secs / 86400), 'day');
  }
  function amountClass(text) { return 'amount ' + (Number(text) < 0 ? 'neg' : 'pos'); }
  /** `10G`, `500M`, `1024` (powers of 1024), as the CLI reads sizes. */
  function parseSize(text) {
    const m = /^\s*(\d+(?:[.,]\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text || '');
    if (!m) throw new Error(t('size.bad', { text: JSON.stringify(text || '') }));
    const mult = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40 }[m[2].toLowerCase()];
    return Math.floor(Number(m[1].replace(',', '.')) * mult);
  }

  // ---------------------------------------------------------------- live pulse
  let pulse = null;
  let current = null;
  let refreshing = false;
  let again = false;

  /** Refreshes the current page, never twice at once. */
  async function schedule() {
    if (!current) return;
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      do {
        again = false;
        const page = current;
        try {
          await page.refresh();
          // Shown with its data (what tests and screenshots wait for).
          if (page === current) document.getElementById('main').dataset.ready = 'true';
        } catch (e) {
          if (page === current) toast(e.message, true);
        }
      } while (again);
    } finally {
      refreshing = false;
    }
  }

  function setLive(state) {
    const el = document.getElementById('live');
    el.dataset.state = state;
    el.textContent = t('live.' + state);
  }

  function connect() {
    const es = new EventSource('/v1/events');
    es.addEventListener('open', () => setLive('live'));
    es.addEventListener('pulse', (ev) => {
      pulse = JSON.parse(ev.data);
      setLive('live');
      renderGlance();
      schedule();
    });
    es.addEventListener('error', () => {
      setLive('lost');
      if (es.readyState === EventSource.CLOSED) {
        // Refused for good (a 401 after the session ended): ask again soon.
        setTimeout(() => { api('GET', '/v1/status').then(connect, () => setTimeout(connect, 3000)); }, 2000);
      }
    });
  }

  function shareSync(sh) {
    if (sh.state === 'pending') return { text: t('sync.pending'), kind: 'warn' };
    if (sh.state !== 'active') return { text: t('sh.state.' + sh.state), kind: '' };
    if (sh.doc_changes === 0 && sh.role !== 'owner') return { text: t('sync.waiting'), kind: 'warn' };
    if (sh.files_pending_down > 0) {
      const pct = sh.bytes_pending_down ? Math.floor((100 * sh.bytes_pending_down_stored) / sh.bytes_pending_down) : 0;
      return { text: t('sync.receiving', { n: sh.files_pending_down, pct }), kind: 'warn' };
    }
    return { text: t('sync.in_sync'), kind: 'ok' };
  }

  function badge(id, text, kind) {
    const el = document.getElementById(id);
    el.textContent = text;
    el.className = 'badge ' + (kind || '');
  }

  function renderGlance() {
    if (!pulse) return;
    document.getElementById('node-name').textContent = pulse.node.name;
    document.title = 'Hearth · ' + pulse.node.name;
    const online = pulse.contacts.filter((c) => c.online).length;
    badge('badge-contacts', pulse.contacts.length ? `${online}/${pulse.contacts.length}` : '', online ? 'ok' : '');
    const unsynced = pulse.shares.filter((sh) => shareSync(sh).kind === 'warn').length;
    badge('badge-shares', pulse.shares.length ? (unsynced ? String(unsynced) : '✓') : '', unsynced ? 'warn' : 'ok');
    const seen = Number(localStorage.getItem('hearth.alerts.seen.' + pulse.node.peer_id) || 0);
    const fresh = Math.max(0, pulse.bank.alerts - seen);
    badge('badge-bank', fresh ? String(fresh) : '', 'bad');
    const b = pulse.backup;
    badge('badge-backups', b.snapshots ? (b.restorable ? '✓' : '!') : '', b.restorable ? 'ok' : 'bad');
  }

  function markAlertsSeen() {
    if (pulse) localStorage.setItem('hearth.alerts.seen.' + pulse.node.peer_id, String(pulse.bank.alerts));
    renderGlance();
  }

  // ---------------------------------------------------------------- pages
  const PAGES = {};

  PAGES.overview = (main) => {
    const contacts = h('div');
    const shares = h('div');
    const bank = h('div');
    const backups = h('div');
    main.append(
      h('h1', { text: t('ov.title') }),
      h('div', { class: 'grid two' },
        card({ id: 'ov-contacts' }, t('nav.contacts'), contacts, h('a', { href: '#/contacts', text: t('ov.manage') })),
        card({ id: 'ov-shares' }, t('ov.shares'), shares, h('a', { href: '#/shares', text: t('ov.manage') })),
        card({ id: 'ov-bank' }, t('ov.bank'), bank, h('a', { href: '#/bank', text: t('ov.manage') })),
        card({ id: 'ov-backups' }, t('ov.backups'), backups, h('a', { href: '#/backups', text: t('ov.manage') })),
      ),
    );
    return {
      async refresh() {
        if (!pulse) return;
        update(contacts, pulse.contacts, (list) => {
          if (!list.length) return empty(t('ov.no_contacts'));
          const on = list.filter((c) => c.online).length;
          return [
            h('p', { class: 'big', text: t('ov.contacts', { n: on, total: list.length }) }),
            h('ul', { class: 'list' }, list.map((c) => h('li', {}, dot(c.online), h('span', { class: 'grow', text: c.name })))),
          ];
        });
        update(shares, pulse.shares, (list) => (list.length
          ? h('ul', { class: 'list' }, list.map((sh) => {
            const sync = shareSync(sh);
            return h('li', { dataset: { share: sh.name } },
              h('a', { class: 'grow', href: '#/shares/' + sh.id, text: sh.name }),
              sh.conflicts ? pill(t('sync.conflicts', { n: sh.conflicts }), 'bad') : null,
              pill(sync.text, sync.kind));
          }))
          : empty(t('ov.no_shares'))));
        // What each account did lately: the viewer's accounts first (a
        // parent's account is what a family looks at), then one's own.
        const received = pulse.bank.views.filter((v) => v.role === 'viewer' && v.state !== 'revoked')
          .map((v) => ({ ...v, who: t('bk.from', { name: v.contact || '?' }) }));
        const own = pulse.bank.accounts.map((a) => ({ ...a, who: t('bk.mine') }));
        const shown = [...received, ...own].slice(0, 4);
        const recent = await Promise.all(shown.map((a) => api('GET', `/v1/bank/accounts/${enc(a.id)}/operations`)
          .then((ops) => ops.slice(-3).reverse(), () => [])));
        update(bank, [shown, recent, pulse.bank.last_alert], ([accounts, latest, last]) => [
          last ? h('div', { class: 'alert-item' }, h('strong', { text: fmtDay(last.date) + ' · ' }), alertText(last)) : null,
          accounts.length ? accounts.map((a, i) => h('div', { class: 'ov-account', dataset: { account: a.name } },
            h('div', { class: 'card-head' },
              h('span', {}, h('strong', { text: a.name }), ' · ', h('span', { class: 'muted', text: a.who })),
              h('span', { class: amountClass(a.balance) + ' strong', text: fmtMoney(a.balance, a.currency) })),
            h('table', { class: 'ops small' }, h('tbody', {}, latest[i].map((o) => h('tr', {},
              h('td', { class: 'date', text: fmtDay(o.date) }), h('td', { class: 'label', text: o.label }),
              h('td', { class: amountClass(o.amount), text: fmtMoney(o.amount, o.currency) }))))))) : empty(t('ov.no_bank')),
        ]);
        update(backups, [pulse.backup.restorable, pulse.backup.snapshots, pulse.backup.last_snapshot_time, pulse.backup.progress, lang], () => {
          const b = pulse.backup;
          const restorable = b.restorable && b.snapshots > 0;
          return [
            h('div', { class: 'restorable ' + (restorable ? 'yes' : b.snapshots ? 'no' : 'none') },
              h('span', { class: 'big', text: restorable ? t('bu.restorable_yes') : t('bu.restorable_no') })),
            h('p', { class: 'muted', text: b.snapshots ? t('ov.last_backup', { when: fmtTime(b.last_snapshot_time) }) : t('ov.no_backup') }),
            progressBlock(b.progress),
          ];
        });
      },
    };
  };

  PAGES.contacts = (main) => {
    const self = h('div');
    const list = h('div');
    const invitations = h('div');
    const tokenBox = h('div');
    const invite = form('invite-form', async () => {
      const inv = await api('POST', '/v1/invitations', {});
      const area = h('textarea', { id: 'invite-token', class: 'token', readOnly: true, rows: 4, text: inv.token });
      tokenBox.replaceChildren(
        area,
        h('div', { class: 'row' },
          h('span', { class: 'muted small grow', text: t('ct.invite_valid', { when: fmtTime(inv.expires_at) }) }),
          action(t('ct.copy'), async () => { area.select(); await navigator.clipboard.writeText(inv.token); return t('ct.copied'); }, { class: 'ghost' })),
      );
      return ' ';
    }, h('p', { class: 'muted', text: t('ct.invite_help') }), h('button', { id: 'invite-create', text: t('ct.invite_create') }), tokenBox);
    const join = form('join-form', async (f) => {
      const c = await api('POST', '/v1/join', { token: val(f, 'token'), name: val(f, 'name') || null });
      f.reset();
      return t('ct.joined', { name: c.name });
    },
    h('p', { class: 'muted', text: t('ct.join_help') }),
    field(t('ct.join_token'), h('textarea', { id: 'join-token', name: 'token', rows: 3, required: true })),
    h('div', { class: 'row' },
      field(t('ct.join_name'), h('input', { id: 'join-name', name: 'name', autocomplete: 'off' })),
      h('button', { id: 'join-submit', text: t('ct.join_submit') })));
    main.append(
      h('h1', { text: t('ct.title') }),
      h('div', { class: 'grid two' },
        card({ id: 'contacts-list' }, t('ct.list'), list),
        card({ id: 'contacts-invite' }, t('ct.invite'), invite),
        card({ id: 'contacts-join' }, t('ct.join'), join),
        h('div', { class: 'stack' }, card({ id: 'contacts-self' }, t('ct.this_node'), self), card({ id: 'contacts-invitations' }, t('ct.invitations'), invitations)),
      ),
    );
    return {
      async refresh() {
        const [contacts, invs, status] = await Promise.all([api('GET', '/v1/contacts'), api('GET', '/v1/invitations'), api('GET', '/v1/status')]);
        update(self, [status.name, status.peer_id, status.connected_contacts.length, status.contacts_total], () => [
          h('p', { class: 'big', text: status.name }),
          h('p', { class: 'mono small muted token', text: status.peer_id }),
          h('p', { text: t('ov.contacts', { n: status.connected_contacts.length, total: status.contacts_total }) }),
        ]);
        const rows = contacts.map((c) => [c.name, c.their_name, c.online, c.last_seen_unix, c.origin, c.refused_by_them]);
        update(list, rows, () => (contacts.length
          ? h('ul', { class: 'list' }, contacts.map((c) => h('li', { dataset: { contact: c.name, online: String(c.online) } },
            dot(c.online),
            h('span', { class: 'grow' },
              h('strong', { text: c.name }), c.their_name && c.their_name !== c.name ? h('span', { class: 'muted', text: ' (' + c.their_name + ')' }) : null,
              h('br'),
              h('span', { class: 'small muted', text: (c.online ? t('online') : t('last_seen', { when: ago(c.last_seen_unix) })) + ' · ' + (c.origin === 'invited' ? t('ct.invited') : t('ct.joined_them')) })),
            c.refused_by_them ? pill(t('ct.refused'), 'bad') : null,
            h('span', { class: 'end' }, action(t('remove'), async () => {
              if (!confirm(t('confirm.remove', { name: c.name }))) return null;
              await api('DELETE', '/v1/contacts/' + enc(c.name));
              return t('done');
            }, { class: 'danger' })))))
          : empty(t('ct.none'))));
        update(invitations, invs, () => (invs.length
          ? h('ul', { class: 'list' }, invs.slice(-8).reverse().map((i) => h('li', {},
            h('span', { class: 'grow small', text: fmtTime(i.created_at) }),
            pill(i.state === 'used' ? t('ct.inv.used', { name: i.used_by || '?' }) : t('ct.inv.' + i.state), i.state === 'open' ? 'ok' : ''))))
          : empty(t('ct.inv_none'))));
      },
    };
  };

  PAGES.shares = (main, [id]) => (id ? shareDetail(main, decodeURIComponent(id)) : shareList(main));

  function shareList(main) {
    const list = h('div');
    const create = form('share-create', async (f) => {
      const v = await api('POST', '/v1/shares', { path: val(f, 'path'), name: val(f, 'name') || null });
      f.reset();
      return t('sh.created', { name: v.name });
    },
    h('p', { class: 'muted', text: t('sh.create_help') }),
    field(t('sh.path'), h('input', { id: 'share-path', name: 'path', required: true, placeholder: '/home/…/Family', autocomplete: 'off' })),
    h('div', { class: 'row' },
      field(t('sh.name'), h('input', { id: 'share-name', name: 'name', autocomplete: 'off' })),
      h('button', { id: 'share-create-submit', text: t('sh.create_submit') })));
    main.append(h('h1', { text: t('sh.title') }), h('div', { class: 'grid two' }, card({ id: 'shares-list' }, null, list), card({ id: 'shares-create' }, t('sh.create'), create)));
    return {
      async refresh() {
        const shares = await api('GET', '/v1/shares');
        const byId = Object.fromEntries(((pulse && pulse.shares) || []).map((sh) => [sh.id, sh]));
        const rows = shares.map((sh) => ({ ...sh, ...(byId[sh.id] || {}) }));
        update(list, rows, () => (rows.length
          ? h('ul', { class: 'list' }, rows.map((sh) => {
            const sync = shareSync(sh);
            if (sh.state === 'pending') {
              return h('li', { dataset: { share: sh.name, state: sh.state } },
                h('div', { class: 'grow' }, h('strong', { text: t('sh.invited_by', { name: sh.name }) }),
                  form('accept-' + sh.id, async (f, submitter) => {
                    if (submitter && submitter.name === 'decline') {
                      await api('POST', `/v1/shares/${sh.id}/decline`);
                      return t('done');
                    }
                    await api('POST', `/v1/shares/${sh.id}/accept`, { path: val(f, 'path') });
                    location.hash = '#/shares/' + sh.id;
                    return t('done');
                  },
                  h('div', { class: 'row' },
                    field(t('sh.accept_path'), h('input', { name: 'path', class: 'accept-path', required: true, autocomplete: 'off' })),
                    h('button', { name: 'accept', class: 'accept-submit', text: t('sh.accept') }),
                    h('button', { name: 'decline', class: 'ghost', text: t('sh.decline') })))));
            }
            return h('li', { dataset: { share: sh.name, state: sh.state } },
              h('span', { class: 'grow' }, h('a', { href: '#/shares/' + sh.id, text: sh.name }), h('br'), h('span', { class: 'small muted mono', text: sh.path || '' })),
              pill(t('sh.role.' + sh.role)),
              sh.conflicts ? pill(t('sync.conflicts', { n: sh.conflicts }), 'bad') : null,
              pill(sync.text, sync.kind));
          }))
          : empty(t('sh.none'))));
      },
    };
  }

  function fileLine(f) {
    return [
      h('span', { class: 'grow' }, h('span', { class: 'path mono', text: f.path + (f.kind === 'dir' ? '/' : '') }), h('br'),
        h('span', { class: 'small muted', text: (f.kind === 'dir' ? '' : fmtBytes(f.size) + ' · ') + t('sh.by', { who: f.author, when: fmtTime(f.at) }) })),
      f.pending ? pill(t('sh.pending'), 'warn') : null,
    ];
  }

  function shareDetail(main, id) {
    const head = h('div');
    const sync = h('div');
    const members = h('div');
    const inviteBox = h('div');
    const conflicts = h('div');
    const files = h('div');
    const trash = h('div');
    let listed = null;
    main.append(
      h('a', { href: '#/shares', text: t('sh.back') }), head,
      h('div', { class: 'grid two' },
        h('div', { class: 'stack' }, card({ id: 'share-sync' }, t('sh.sync'), sync), card({ id: 'share-members' }, t('sh.members'), members, inviteBox)),
        h('div', { class: 'stack' }, card({ id: 'share-conflicts' }, t('sh.conflicts'), conflicts), card({ id: 'share-files' }, t('sh.files'), files), card({ id: 'share-trash' }, t('sh.trash'), trash)),
      ),
    );
    return {
      async refresh() {
        const st = await api('GET', '/v1/shares/' + enc(id));
        const owner = st.role === 'owner';
        const writable = st.role !== 'read-only';
        update(head, [st.name, st.role, st.path, st.state], () => [
          h('h1', { text: st.name }),
          h('p', {}, pill(t('sh.role.' + st.role)), ' ', pill(t('sh.state.' + st.state)), ' ', h('span', { class: 'mono small muted', text: st.path || '' })),
        ]);
        const s = shareSync(st);
        update(sync, [st.files, st.folders, st.bytes, st.files_pending_down, st.bytes_pending_down, st.bytes_pending_down_stored, st.rejected_changes, st.not_shared, s], () => {
          const pct = st.bytes_pending_down ? (100 * st.bytes_pending_down_stored) / st.bytes_pending_down : 100;
          return [
            h('p', {}, pill(s.text, s.kind)),
            st.files_pending_down ? [h('div', { class: 'bar' }, h('span', { style: `width:${pct.toFixed(1)}%` })),
              h('p', { class: 'small', text: t('sh.pending_files', { n: st.files_pending_down, size: fmtBytes(st.bytes_pending_down - st.bytes_pending_down_stored) }) })] : null,
            h('p', { text: t('sh.figures', { files: st.files, folders: st.folders, size: fmtBytes(st.bytes) }) }),
            st.rejected_changes ? h('p', {}, pill(t('sh.rejected', { n: st.rejected_changes }), 'bad')) : null,
            st.not_shared.length ? [h('p', { class: 'small', text: t('sh.not_shared') }), h('ul', { class: 'small mono' }, st.not_shared.map((p) => h('li', { text: p })))] : null,
            !owner && st.state === 'active' ? action(t('sh.leave'), async () => {
              if (!confirm(t('sh.confirm_leave', { name: st.name }))) return null;
              await api('POST', `/v1/shares/${enc(id)}/leave`);
              location.hash = '#/shares';
              return t('done');
            }, { class: 'danger' }) : null,
          ];
        });
        update(members, [st.members, st.pending_invitations, owner], () => [
          h('ul', { class: 'list' }, st.members.map((m) => h('li', { dataset: { member: m.name, role: m.role } },
            dot(m.online), h('span', { class: 'grow', text: m.name === 'you' ? t('you') : m.name }),
            owner && m.role !== 'owner'
              ? h('span', { class: 'end' },
                h('select', {
                  class: 'role-select', 'aria-label': m.name,
                  onchange: async (ev) => {
                    try {
                      await api('POST', `/v1/shares/${enc(id)}/role`, { contact: m.name, role: ev.target.value });
                      toast(t('sh.role_changed'));
                    } catch (e) { toast(e.message, true); }
                    schedule();
                  },
                }, ['read-write', 'read-only'].map((r) => option(r, t('sh.role.' + r), r === m.role))),
                action(t('remove'), async () => {
                  if (!confirm(t('confirm.remove', { name: m.name }))) return null;
                  await api('POST', `/v1/shares/${enc(id)}/role`, { contact: m.name, role: null });
                  return t('done');
                }, { class: 'danger' }))
              : pill(t('sh.role.' + m.role))))),
          st.pending_invitations.length ? h('p', { class: 'small muted', text: t('sh.pending_inv', { names: st.pending_invitations.join(', ') }) }) : null,
        ]);
        if (owner) {
          const contacts = await api('GET', '/v1/contacts');
          const taken = new Set([...st.members.map((m) => m.name), ...st.pending_invitations]);
          const free = contacts.filter((c) => !taken.has(c.name)).map((c) => c.name);
          update(inviteBox, free, () => [
            h('h3', { text: t('sh.invite') }),
            free.length ? form('share-invite', async (f) => {
              const contact = val(f, 'contact');
              await api('POST', `/v1/shares/${enc(id)}/invite`, { contact, read_only: f.elements.namedItem('read_only').checked });
              return t('sh.invited', { name: contact });
            }, h('div', { class: 'row' },
              field(t('bk.contact'), h('select', { id: 'share-invite-contact', name: 'contact' }, free.map((n) => option(n, n)))),
              h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'read_only' }), t('sh.read_only')),
              h('button', { id: 'share-invite-submit', text: t('sh.invite_submit') }))) : empty(t('sh.no_contact')),
          ]);
        } else {
          inviteBox.replaceChildren();
        }
        if (st.state !== 'active') return;
        // The listing walks the whole document on the node: fetched again at
        // once when the document changed, otherwise at most every 5 s (while
        // contents arrive, the figures above change every second).
        const now = Date.now();
        const stale = !listed || listed.changes !== st.doc_changes || listed.trash !== st.in_trash
          || (listed.pending !== st.files_pending_down && (now - listed.at > 5000 || st.files_pending_down === 0));
        if (stale) {
          const [listing, deleted] = await Promise.all([api('GET', `/v1/shares/${enc(id)}/files?limit=500`), api('GET', `/v1/shares/${enc(id)}/trash`)]);
          listed = { listing, deleted, changes: st.doc_changes, trash: st.in_trash, pending: st.files_pending_down, at: now };
        }
        const { listing, deleted } = listed;
        update(conflicts, listing.conflicts, (list) => (list.length
          ? [h('p', { class: 'small muted', text: t('sh.conflict_help') }), list.map((c) => h('div', { class: 'conflict' },
            h('div', { class: 'kept' }, h('strong', { text: t('sh.kept') }), h('ul', { class: 'list' }, h('li', {}, fileLine(c.kept)))),
            h('div', { class: 'copy' }, h('strong', { text: t('sh.copy') }), h('ul', { class: 'list' }, h('li', {}, fileLine(c.copy))))))]
          : empty(t('sh.no_conflicts'))));
        update(files, listing, () => (listing.files.length
          ? [h('ul', { class: 'list files' }, listing.files.map((f) => h('li', { dataset: { path: f.path, pending: String(f.pending) } }, fileLine(f)))),
            listing.truncated ? h('p', { class: 'small muted', text: t('sh.truncated', { n: listing.files.length, total: listing.total }) }) : null]
          : empty(t('sh.no_files'))));
        update(trash, [deleted, writable], () => (deleted.length
          ? h('ul', { class: 'list' }, deleted.map((d) => h('li', { dataset: { path: d.path } },
            h('span', { class: 'grow' }, h('span', { class: 'mono', text: d.path }), h('br'), h('span', { class: 'small muted', text: fmtBytes(d.size) + ' · ' + t('sh.by', { who: d.author, when: fmtTime(d.at) }) })),
            writable ? action(t('sh.restore'), async () => {
              await api('POST', `/v1/shares/${enc(id)}/restore`, { path: d.path, version: null });
              return t('sh.restored', { path: d.path });
            }, { class: 'ghost' }) : null)))
          : empty(t('sh.no_trash'))));
      },
    };
  }

  /** Balance over time, drawn from the operations back from the balance. */
  function balanceChart(ops, balance, currency, width) {
    const byDay = new Map();
    for (const o of ops) byDay.set(o.date, (byDay.get(o.date) || 0) + Number(o.amount));
    const days = [...byDay.keys()].sort();
    if (!days.length) return empty(t('bk.no_ops'));
    let bal = balance === null || balance === undefined ? ops.reduce((sum, o) => sum + Number(o.amount), 0) : Number(balance);
    const points = [];
    for (let i = days.length - 1; i >= 0; i--) {
      points.push([Date.parse(days[i] + 'T00:00:00Z'), bal, days[i]]);
      bal -= byDay.get(days[i]);
    }
    // The balance before the first operation, a day earlier.
    points.push([Date.parse(days[0] + 'T00:00:00Z') - 86400000, bal, null]);
    points.reverse();
    const w = Math.max(280, Math.floor(width));
    const hgt = Math.round(Math.min(260, Math.max(170, w * 0.38)));
    const pad = { l: 8, r: 8, t: 22, b: 24 };
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [low, high] = [Math.min(...ys), Math.max(...ys)];
    let [y0, y1] = [low, high];
    if (y1 === y0) { y1 += 1; y0 -= 1; }
    const margin = (y1 - y0) * 0.08;
    [y0, y1] = [y0 - margin, y1 + margin];
    const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
    const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const Y = (y) => pad.t + (1 - (y - y0) / (y1 - y0)) * (hgt - pad.t - pad.b);
    // Steps: a balance holds until the next day with operations.
    let d = `M${X(points[0][0]).toFixed(1)},${Y(points[0][1]).toFixed(1)}`;
    for (let i = 1; i < points.length; i++) d += ` H${X(points[i][0]).toFixed(1)} V${Y(points[i][1]).toFixed(1)}`;
    const base = Y(Math.max(y0, Math.min(0, y1)));
    const area = `${d} V${base.toFixed(1)} H${X(points[0][0]).toFixed(1)} Z`;
    const label = (x, y, text, anchor) => s('text', { x, y, 'text-anchor': anchor }, text);
    return s('svg', { class: 'chart', id: 'balance-chart', width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': t('bk.chart'), 'data-points': points.length },
      s('line', { class: 'grid-line', x1: pad.l, x2: w - pad.r, y1: Y(high), y2: Y(high) }),
      s('line', { class: 'grid-line', x1: pad.l, x2: w - pad.r, y1: Y(low), y2: Y(low) }),
      y0 < 0 && y1 > 0 ? s('line', { class: 'zero', x1: pad.l, x2: w - pad.r, y1: Y(0), y2: Y(0) }) : null,
      s('path', { class: 'area', d: area }),
      s('path', { class: 'line', d }),
      points.filter((p) => p[2]).map((p) => s('circle', { cx: X(p[0]), cy: Y(p[1]), r: 3 }, s('title', {}, `${fmtDay(p[2])}: ${fmtMoney(p[1].toFixed(2), currency)}`))),
      // The highest and lowest balances, on their lines (right-aligned, away
      // from the start of the curve).
      label(w - pad.r, Y(high) - 5, fmtMoney(high.toFixed(2), currency), 'end'),
      label(w - pad.r, Y(low) + 13, fmtMoney(low.toFixed(2), currency), 'end'),
      label(w - pad.r, hgt - 6, fmtDay(days[days.length - 1]), 'end'),
      label(X(points[0][0]) + 2, hgt - 6, fmtDay(days[0]), 'start'));
  }

  let bankShowAll = false;

  PAGES.bank = (main, [selected]) => {
    selected = selected ? decodeURIComponent(selected) : null;
    const accounts = h('div');
    const detail = h('div');
    const alerts = h('div');
    const rules = h('div');
    const ruleForm = h('div');
    const importForm = form('bank-import', async (f) => {
      const file = f.elements.namedItem('file').files[0];
      if (!file) throw new Error(t('bk.no_file'));
      const q = new URLSearchParams();
      if (val(f, 'account')) q.set('account', val(f, 'account'));
      if (val(f, 'format')) q.set('format', val(f, 'format'));
      const report = await api('POST', '/v1/bank/import?' + q, await file.arrayBuffer());
      f.reset();
      return report.accounts.map((a) => t('bk.imported', { name: a.name, added: a.added, dup: a.duplicates })).join(' ');
    },
    h('p', { class: 'muted small', text: t('bk.import_help') }),
    field(t('bk.file'), h('input', { type: 'file', id: 'import-file', name: 'file' })),
    h('div', { class: 'row' },
      field(t('bk.account'), h('input', { id: 'import-account', name: 'account', autocomplete: 'off' })),
      field(t('bk.format'), h('select', { name: 'format' }, option('', t('bk.auto')), ['ofx', 'camt053', 'csv', 'cozy-json'].map((f) => option(f, f)))),
      h('button', { id: 'import-submit', text: t('bk.import_submit') })));
    main.append(
      h('h1', { text: t('bk.title') }),
      card({ id: 'bank-accounts' }, t('bk.accounts'), accounts),
      h('div', { class: 'grid two', style: 'margin-top:1rem' },
        card({ id: 'bank-detail' }, null, detail),
        h('div', { class: 'stack' },
          card({ id: 'bank-alerts' }, t('bk.alerts'), alerts),
          card({ id: 'bank-rules' }, t('bk.rules'), rules, ruleForm),
          card({ id: 'bank-import-card' }, t('bk.import'), importForm))),
    );
    markAlertsSeen();
    return {
      async refresh() {
        const [own, views, ruleList, notes, contacts] = await Promise.all([
          api('GET', '/v1/bank/accounts'), api('GET', '/v1/bank/views'), api('GET', '/v1/bank/alerts'),
          api('GET', '/v1/bank/notifications'), api('GET', '/v1/contacts')]);
        markAlertsSeen();
        const received = views.filter((v) => v.role === 'viewer');
        const all = [
          ...received.map((v) => ({ id: v.id, name: v.name, mine: false, balance: v.balance, currency: v.currency, day: v.balance_date, ops: v.operations, state: v.state, contact: v.contact })),
          ...own.map((a) => ({ id: a.id, name: a.name, mine: true, balance: a.balance, currency: a.currency, day: a.balance_date, ops: a.operations, state: 'active', shared: a.shared_with })),
        ];
        const active = all.filter((a) => a.state !== 'revoked');
        const pick = all.find((a) => a.id === selected) || active[0] || all[0];
        update(accounts, [all, pick && pick.id], () => (all.length
          ? h('div', { class: 'accounts' }, all.map((a) => h('button', {
            type: 'button', class: 'account' + (pick && a.id === pick.id ? ' selected' : ''), dataset: { account: a.name, mine: String(a.mine) },
            onclick: () => { location.hash = '#/bank/' + a.id; },
          },
          h('div', {}, h('strong', { text: a.name })),
          h('div', { class: 'small muted', text: a.mine ? t('bk.mine') : t('bk.from', { name: a.contact || '?' }) }),
          a.state === 'revoked' ? pill(t('bk.revoked', { name: a.contact || '?' }), 'bad') : h('div', { class: amountClass(a.balance) + ' amount', text: fmtMoney(a.balance, a.currency) }),
          h('div', { class: 'small muted', text: t('bk.ops', { n: a.ops }) }))))
          : empty(t('bk.none'))));
        if (pick) {
          const ops = pick.state === 'revoked' ? [] : await api('GET', `/v1/bank/accounts/${enc(pick.id)}/operations`);
          const width = Math.min(detail.clientWidth || 600, 900);
          update(detail, [pick, ops, bankShowAll, width, contacts.map((c) => c.name)], () => {
            const newest = ops.slice().reverse();
            const shown = bankShowAll ? newest : newest.slice(0, 40);
            return [
              h('div', { class: 'card-head' }, h('h2', { text: pick.name }),
                h('span', { class: amountClass(pick.balance) + ' big', id: 'bank-balance', text: fmtMoney(pick.balance, pick.currency) })),
              h('p', { class: 'small muted', text: (pick.mine ? t('bk.mine') : t('bk.from', { name: pick.contact || '?' })) + (pick.day ? ' · ' + t('bk.balance_on', { day: fmtDay(pick.day) }) : '') }),
              pick.state === 'revoked' ? h('p', {}, pill(t('bk.revoked', { name: pick.contact || '?' }), 'bad'))
                : pick.state === 'waiting' ? empty(t('bk.waiting')) : [h('h3', { text: t('bk.chart') }), balanceChart(ops, pick.balance, pick.currency, width)],
              ops.length ? [h('h3', { text: t('bk.operations') }),
                h('table', { class: 'ops', id: 'bank-ops' }, h('tbody', {}, shown.map((o) => h('tr', {},
                  h('td', { class: 'date', text: fmtDay(o.date) }),
                  h('td', { class: 'label' }, o.label, o.category ? h('span', { class: 'pill small', text: o.category }) : null, o.note ? h('div', { class: 'small muted', text: o.note }) : null),
                  h('td', { class: amountClass(o.amount), text: fmtMoney(o.amount, o.currency) }))))),
                newest.length > shown.length ? h('button', { type: 'button', class: 'ghost', text: t('bk.show_all', { n: newest.length }), onclick: () => { bankShowAll = true; schedule(); } }) : null] : null,
              pick.mine ? shareAccountBlock(pick, contacts) : null,
            ];
          });
        } else {
          update(detail, null, () => empty(t('bk.none')));
        }
        update(alerts, notes, () => (notes.length
          ? notes.slice().reverse().map((n) => h('div', { class: 'alert-item', dataset: { rule: String(n.rule) } }, h('strong', { text: fmtDay(n.date) + ' · ' }), alertText(n)))
          : empty(t('bk.no_alerts'))));
        update(rules, ruleList, () => (ruleList.length
          ? h('ul', { class: 'list' }, ruleList.map((r) => h('li', {},
            h('span', { class: 'grow' }, h('strong', { text: r.on }), ' — ', ruleText(r.rule), r.hide_amounts ? h('span', { class: 'muted', text: ' (' + t('bk.hide') + ')' }) : null),
            action(t('remove'), async () => { await api('DELETE', '/v1/bank/alerts/' + r.id); return t('done'); }, { class: 'danger' }))))
          : empty(t('bk.no_rules'))));
        const targets = all.filter((a) => a.state !== 'revoked').map((a) => [a.id, a.name + (a.mine ? '' : ' (' + (a.contact || '?') + ')')]);
        update(ruleForm, targets, () => (targets.length ? [h('h3', { text: t('bk.add_rule') }), form('rule-add', async (f) => {
          const rule = val(f, 'rule');
          await api('POST', '/v1/bank/alerts', {
            on: val(f, 'on'), rule, value: val(f, 'value') || null,
            hide_amounts: f.elements.namedItem('hide').checked, from: val(f, 'from') || null,
          });
          return t('bk.rule_added');
        }, h('div', { class: 'row' },
          field(t('bk.on'), h('select', { id: 'rule-on', name: 'on' }, targets.map(([v, n]) => option(v, n, pick && v === pick.id)))),
          field(t('bk.rule'), h('select', { id: 'rule-kind', name: 'rule' }, ['large-debit', 'low-balance', 'new-payee', 'busy-day', 'foreign'].map((r) => option(r, t('bk.rule.' + r))))),
          field(t('bk.value'), h('input', { id: 'rule-value', name: 'value', inputmode: 'decimal', autocomplete: 'off', placeholder: '1000' })),
          field(t('bk.rule_from'), h('input', { type: 'date', name: 'from' })),
          h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'hide' }), t('bk.hide')),
          h('button', { id: 'rule-submit', text: t('bk.rule_submit') })))] : null));
      },
    };
  };

  /** A rule as the node describes it (`large-debit 1000`), in the page's language. */
  function ruleText(text) {
    const [kind, ...rest] = String(text).split(' ');
    return STRINGS['bk.rule.' + kind] ? [t('bk.rule.' + kind), ...rest].join(' ') : text;
  }

  function shareAccountBlock(account, contacts) {
    const free = contacts.map((c) => c.name).filter((n) => !(account.shared || []).includes(n));
    return [
      (account.shared || []).length ? h('p', {}, t('bk.shown_to'), account.shared.map((name) => h('span', { class: 'nowrap' }, pill(name, 'ok'), ' ',
        action(t('bk.unshare'), async () => {
          if (!confirm(t('bk.confirm_unshare', { name }))) return null;
          await api('POST', `/v1/bank/accounts/${enc(account.id)}/unshare`, { contact: name, since: null });
          return t('done');
        }, { class: 'danger' }), ' '))) : null,
      free.length ? [h('h3', { text: t('bk.share') }), form('bank-share', async (f) => {
        const contact = val(f, 'contact');
        await api('POST', `/v1/bank/accounts/${enc(account.id)}/share`, { contact, since: val(f, 'since') || null });
        return t('bk.shared', { name: contact });
      }, h('div', { class: 'row' },
        field(t('bk.contact'), h('select', { id: 'bank-share-contact', name: 'contact' }, free.map((n) => option(n, n)))),
        field(t('bk.since'), h('input', { type: 'date', name: 'since' })),
        h('button', { id: 'bank-share-submit', text: t('bk.share_submit') })))] : null,
    ];
  }

  function progressBlock(p) {
    if (!p || !p.phase || p.phase === 'idle') return null;
    const pct = p.bytes_total ? (100 * p.bytes_done) / p.bytes_total : p.files_total ? (100 * p.files_done) / p.files_total : 0;
    return h('div', { id: 'backup-progress', dataset: { phase: p.phase } },
      h('strong', { text: t('bu.phase.' + p.phase) }),
      h('div', { class: 'bar' }, h('span', { style: `width:${Math.min(100, pct).toFixed(1)}%` })),
      h('p', { class: 'small muted', text: t('bu.progress', { done: p.files_done, total: p.files_total, bytes: fmtBytes(p.bytes_done), tbytes: fmtBytes(p.bytes_total), up: fmtBytes(p.uploaded) }) }));
  }

  let recoveryKey = null;

  PAGES.backups = (main) => {
    const banner = h('div');
    const friends = h('div');
    const addFriend = h('div');
    const hosting = h('div');
    const paths = h('div');
    const snapshots = h('div');
    const keyBox = h('div');
    const keyForms = h('div');
    const pathForm = form('backup-add-path', async (f) => {
      await backup('add', { path: val(f, 'path') });
      f.reset();
      return t('done');
    }, h('div', { class: 'row' }, field(t('bu.add_path'), h('input', { id: 'backup-path', name: 'path', required: true, autocomplete: 'off' })),
      h('button', { id: 'backup-path-submit', text: t('bu.add') })));
    main.append(
      h('h1', { text: t('bu.title') }),
      card({ id: 'backup-status' }, null, banner),
      h('div', { class: 'grid two', style: 'margin-top:1rem' },
        h('div', { class: 'stack' },
          card({ id: 'backup-friends' }, t('bu.friends'), friends, addFriend),
          card({ id: 'backup-hosting' }, t('bu.hosting'), hosting)),
        h('div', { class: 'stack' },
          card({ id: 'backup-paths' }, t('bu.paths'), paths, pathForm),
          card({ id: 'backup-snapshots' }, t('bu.snapshots'), snapshots),
          card({ id: 'backup-key' }, t('bu.key'), h('p', { class: 'muted small', text: t('bu.key_help') }), keyBox, keyForms))),
    );
    return {
      async refresh() {
        const [st, fr, ho, snaps, contacts] = await Promise.all([
          backup('status'), backup('friends'), backup('hosting'), backup('snapshots'), api('GET', '/v1/contacts')]);
        const running = st.progress && st.progress.phase && st.progress.phase !== 'idle';
        // With no snapshot there is nothing to restore, whatever the friends.
        const restorable = st.restorable && st.snapshots > 0;
        update(banner, [restorable, st.reachable, st.hosts, st.k, st.snapshots, st.last_snapshot, st.progress], () => [
          h('div', { class: 'restorable ' + (restorable ? 'yes' : st.snapshots ? 'no' : 'none'), id: 'restorable', dataset: { restorable: String(restorable) } },
            h('span', { class: 'big', text: restorable ? t('bu.restorable_yes') : t('bu.restorable_no') }),
            h('span', { text: st.snapshots ? t('bu.detail', { reachable: st.reachable, hosts: st.hosts, k: st.k }) : t('bu.no_backup') })),
          st.last_snapshot ? h('p', { text: t('bu.last', { when: fmtTime(st.last_snapshot.time), files: st.last_snapshot.files, size: fmtBytes(st.last_snapshot.bytes) }) }) : null,
          progressBlock(st.progress),
          h('div', { class: 'row', style: 'margin-top:.5rem' },
            action(t('bu.run'), async () => {
              const r = await backup('run');
              return t('bu.ran', { files: r.stats.files });
            }, { id: 'backup-run', disabled: running }),
            action(t('bu.audit_now'), async () => { await backup('audit'); return t('bu.audited'); }, { class: 'ghost', id: 'backup-audit', disabled: running || !st.snapshots })),
        ]);
        update(friends, fr, () => (fr.length
          ? h('ul', { class: 'list' }, fr.map((f) => h('li', { dataset: { friend: f.name, state: f.state, audit: f.last_audit ? (f.last_audit.ok ? 'ok' : 'failed') : 'none' } },
            dot(f.online),
            h('span', { class: 'grow' }, h('strong', { text: f.name }), h('br'),
              h('span', { class: 'small muted', text: [
                t('bu.holds', { n: f.holds_for_me_shards, size: fmtBytes(f.holds_for_me_bytes) }),
                f.quota ? t('bu.quota', { size: fmtBytes(f.quota) }) : null,
                f.last_audit ? t('bu.audit', { when: ago(f.last_audit.at) }) : t('bu.audit_none'),
              ].filter(Boolean).join(' · ') }),
              f.repaired ? h('div', { class: 'small', text: f.repaired }) : null),
            pill(t('bu.state.' + f.state), f.state === 'accepted' ? 'ok' : f.state === 'declined' ? 'bad' : 'warn'),
            f.last_audit ? pill(f.last_audit.ok ? t('bu.audit_ok') : t('bu.audit_bad'), f.last_audit.ok ? 'ok' : 'bad') : null)))
          : empty(t('bu.no_friends'))));
        const free = contacts.map((c) => c.name).filter((n) => !fr.some((f) => f.name === n));
        update(addFriend, free, () => (free.length ? [h('h3', { text: t('bu.add_friend') }), form('backup-friend-add', async (f) => {
          const contact = val(f, 'contact');
          await backup('friends_add', { contact, offer: parseSize(val(f, 'offer')) });
          return t('bu.asked', { name: contact });
        }, h('div', { class: 'row' },
          field(t('bk.contact'), h('select', { id: 'backup-friend-contact', name: 'contact' }, free.map((n) => option(n, n)))),
          field(t('bu.offer'), h('input', { name: 'offer', value: '10G', autocomplete: 'off' })),
          h('button', { id: 'backup-friend-submit', text: t('bu.ask') })))] : null));
        update(hosting, ho, () => (ho.length
          ? h('ul', { class: 'list' }, ho.map((x) => h('li', { dataset: { owner: x.owner, state: x.state } },
            h('span', { class: 'grow' }, h('strong', { text: x.owner }), h('br'),
              x.state === 'accepted' ? [h('span', { class: 'small muted', text: t('bu.used', { used: fmtBytes(x.used), quota: fmtBytes(x.quota) }) }),
                h('div', { class: 'bar' }, h('span', { style: `width:${x.quota ? Math.min(100, (100 * x.used) / x.quota).toFixed(1) : 0}%` }))] : null),
            pill(t('bu.state.' + x.state), x.state === 'accepted' ? 'ok' : x.state === 'pending' ? 'warn' : ''),
            x.state !== 'accepted' ? form('hosting-' + x.owner, async (f, submitter) => {
              const accept = !(submitter && submitter.name === 'decline');
              await backup('hosting_answer', { contact: x.owner, accept, quota: accept ? parseSize(val(f, 'quota')) : 0 });
              return t('bu.answered', { name: x.owner });
            }, h('div', { class: 'row' },
              field(t('bu.grant'), h('input', { name: 'quota', class: 'hosting-quota', value: x.offer ? fmtSizeInput(x.offer) : '10G', autocomplete: 'off' })),
              h('button', { name: 'accept', class: 'hosting-accept', text: t('bu.accept') }),
              x.state === 'pending' ? h('button', { name: 'decline', class: 'ghost', text: t('bu.decline') }) : null)) : null)))
          : empty(t('bu.no_hosting'))));
        update(paths, st.paths, () => (st.paths.length
          ? h('ul', { class: 'list' }, st.paths.map((p) => h('li', { dataset: { path: p } }, h('span', { class: 'grow mono small', text: p }),
            action(t('remove'), async () => { await backup('remove', { path: p }); return t('done'); }, { class: 'danger' }))))
          : empty(t('bu.no_paths'))));
        update(snapshots, snaps, () => [
          snaps.length ? h('ul', { class: 'list' }, snaps.slice(-6).reverse().map((x) => h('li', {},
            h('span', { class: 'grow', text: fmtTime(x.time) }), h('span', { class: 'small muted', text: t('bu.snap_line', { n: x.files, size: fmtBytes(x.bytes) }) }))))
            : empty(t('bu.no_snapshots')),
          snaps.length ? form('backup-restore', async (f) => {
            const r = await backup('restore', { snapshot: val(f, 'snapshot') || null, path: val(f, 'path') || null, to: val(f, 'to') });
            return t('bu.restored', { files: r.files });
          },
          h('div', { class: 'row' },
            field(t('bu.snapshot'), h('select', { name: 'snapshot' }, option('', t('bu.latest')), snaps.slice().reverse().map((x) => option(x.id, fmtTime(x.time))))),
            field(t('bu.restore_path'), h('input', { name: 'path', autocomplete: 'off' }))),
          h('div', { class: 'row' },
            field(t('bu.restore_to'), h('input', { name: 'to', required: true, autocomplete: 'off' })),
            h('button', { text: t('bu.restore') }))) : null,
        ]);
        renderKey();
        const accepted = fr.filter((f) => f.state === 'accepted').map((f) => f.name);
        update(keyForms, accepted, () => (accepted.length ? [
          h('h3', { text: t('bu.pass') }),
          form('backup-passphrase', async (f) => {
            if (val(f, 'p1') !== val(f, 'p2')) throw new Error(t('bu.pass_mismatch'));
            const r = await backup('set_passphrase', { passphrase: val(f, 'p1') });
            f.reset();
            return t('bu.pass_done', { n: (r.stored_with || []).length });
          }, h('div', { class: 'row' },
            field(t('bu.pass_1'), h('input', { type: 'password', name: 'p1', required: true, autocomplete: 'new-password' })),
            field(t('bu.pass_2'), h('input', { type: 'password', name: 'p2', required: true, autocomplete: 'new-password' })),
            h('button', { text: t('bu.pass_submit') }))),
          accepted.length >= 2 ? [h('h3', { text: t('bu.split') }), form('backup-split', async (f) => {
            const chosen = [...f.querySelectorAll('input[name=friend]:checked')].map((i) => i.value);
            if (chosen.length < 2) throw new Error(t('bu.pick_friends'));
            const r = await backup('split_key', { threshold: Number(val(f, 'threshold')), contacts: chosen });
            return t('bu.split_done', { names: (r.given_to || []).join(', ') });
          }, h('div', { class: 'row' },
            accepted.map((n) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'friend', value: n, checked: true }), n)),
            field(t('bu.threshold'), h('input', { type: 'number', name: 'threshold', min: 1, value: 2 })),
            h('button', { text: t('bu.split_submit') })))] : null,
        ] : null));
      },
    };

    function renderKey() {
      update(keyBox, recoveryKey, () => (recoveryKey
        ? [h('p', { class: 'key', id: 'recovery-key', text: recoveryKey }),
          h('button', { type: 'button', class: 'ghost', text: t('bu.key_hide'), onclick: () => { recoveryKey = null; renderKey(); } })]
        : action(t('bu.key_show'), async () => {
          recoveryKey = (await backup('recovery_key')).recovery_key;
          renderKey();
          return null;
        }, { id: 'recovery-show' })));
    }
  };

  function fmtSizeInput(bytes) {
    for (const [u, m] of [['T', 2 ** 40], ['G', 1 << 30], ['M', 1 << 20], ['K', 1 << 10]]) if (bytes >= m && bytes % m === 0) return bytes / m + u;
    return String(bytes);
  }

  // ---------------------------------------------------------------- shell
  function translateStatic() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    document.getElementById('lang-toggle').replaceChildren(h('span', { class: 'long', text: t('lang.other') }), h('span', { class: 'short', text: t('lang.short') }));
    document.getElementById('logout').textContent = t('logout');
    setLive(document.getElementById('live').dataset.state || 'connecting');
  }

  function route() {
    const [name, ...params] = location.hash.replace(/^#\/?/, '').split('/');
    const page = PAGES[name] ? name : 'overview';
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
    const main = document.getElementById('main');
    main.replaceChildren();
    main.dataset.page = page;
    delete main.dataset.ready;
    bankShowAll = false;
    // The recovery key is shown on demand only, never left on screen.
    recoveryKey = null;
    document.getElementById('toast').className = 'toast';
    current = PAGES[page](main, params.filter(Boolean));
    schedule();
  }

  function start() {
    window.addEventListener('error', (ev) => { (window.hearthErrors = window.hearthErrors || []).push(String(ev.message)); });
    document.addEventListener('securitypolicyviolation', (ev) => {
      (window.hearthErrors = window.hearthErrors || []).push('CSP refused ' + ev.violatedDirective + ' ' + ev.blockedURI);
    });
    window.addEventListener('unhandledrejection', (ev) => { (window.hearthErrors = window.hearthErrors || []).push(String(ev.reason)); });
    translateStatic();
    document.getElementById('lang-toggle').addEventListener('click', () => {
      lang = lang === 'fr' ? 'en' : 'fr';
      localStorage.setItem('hearth.lang', lang);
      translateStatic();
      route();
    });
    document.getElementById('logout').addEventListener('click', async () => {
      try { await api('POST', '/ui/logout'); } finally { location.reload(); }
    });
    let width = window.innerWidth;
    window.addEventListener('resize', () => {
      if (Math.abs(window.innerWidth - width) > 40) { width = window.innerWidth; schedule(); }
    });
    window.addEventListener('hashchange', route);
    route();
    connect();
  }

  start();
})();
